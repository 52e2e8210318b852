"""Load on a running Atelier: N concurrent `gradio_client` users calling /txt2img for T seconds.

Each user is a thread with its own Client that asks for one small, cheap image after another (a
random seed each time, so every request is a real job, never a stored result). Prints requests,
failures, p50/p95 latency (submit to image back, as a script sees it) and jobs per minute; exits
with status 1 if any request failed. The warm-up request (model load) is not counted.

    python bench/load.py --url http://127.0.0.1:7860/ --users 8 --seconds 60 [--api-key atl_...]
    python bench/load.py --start --users 4 --seconds 30     # starts its own app first

`--start` runs `python app.py` on a free port with a temporary data folder and a one-model catalogue
(the demo SD1.5 model, 64x64, 2 steps), so the figures measure the web process, queue, database and
storage around a tiny model; `--queue-workers` sets its consumer threads. ATELIER_DATABASE_URL,
ATELIER_QUEUE_URL and ATELIER_BLOBS, if set, are passed on to it (to measure PostgreSQL, Redis, S3;
empty means SQLite, SqliteHuey and a folder in the temporary data folder). Against a deployment,
point `--url` at the load balancer and pass a model the workers serve (`--model`). This is a
benchmark, not a test.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CATALOGUE = """[[model]]
id = "demo-sd15"
family = "sd15"
source = "demo"
description = "Demo model for bench/load.py."
width = {size}
height = {size}
steps = {steps}
cfg_scale = 7.0
sampler = "euler"
schedule = "normal"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(work: pathlib.Path, port: int, size: int, steps: int, queue_workers: int) -> subprocess.Popen:
    """`python app.py` on 127.0.0.1:`port` with its data in `work`; its output goes to work/app.log."""
    catalogue = work / "models.toml"
    catalogue.write_text(CATALOGUE.format(size=size, steps=steps))
    env = {**os.environ, "ATELIER_DATA_DIR": str(work / "data"), "ATELIER_CATALOGUE": str(catalogue),
           "ATELIER_HOST": "127.0.0.1", "ATELIER_PORT": str(port), "ATELIER_QUEUE_WORKERS": str(queue_workers),
           "HF_HUB_OFFLINE": "1"}
    env.pop("ATELIER_WEB_ONLY", None)      # it must run jobs itself
    log = open(work / "app.log", "wb")   # noqa: SIM115 - the child keeps writing to it
    return subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def connect(url: str, headers: dict, app: subprocess.Popen | None, wait_s: float = 180.0):
    """A Client for `url`, retrying until the app answers (or `app` exits, or `wait_s` passes)."""
    from gradio_client import Client

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return Client(url, headers=headers or None, verbose=False)
        except Exception:
            if (app is not None and app.poll() is not None) or time.monotonic() > deadline:
                raise SystemExit(f"no Atelier answers at {url}") from None
            time.sleep(0.5)


class Tally:
    """Latencies of the requests that succeeded and the errors of those that failed, from every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.last_done = 0.0
        self.elapsed = 0.0     # from the start to the last response, seconds

    def add(self, latency: float | None, error: str = "") -> None:
        with self.lock:
            if error:
                self.errors.append(error)
            else:
                self.latencies.append(latency)
            self.last_done = time.monotonic()


def user(number: int, client, request: dict, until: float, tally: Tally) -> None:
    """One user: request after request until `until` (the one running then is finished and counted)."""
    i = 0
    while time.monotonic() < until:
        i += 1
        started = time.perf_counter()
        try:
            client.predict(prompt=f"load test, user {number}, request {i}", seed=-1, api_name="/txt2img",
                           **request)
        except Exception as e:    # noqa: BLE001 - every failure is counted and reported
            tally.add(None, f"user {number}: {type(e).__name__}: {e}")
        else:
            tally.add(time.perf_counter() - started)


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99) of `values`, interpolated; the only value when there is one."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run(url: str, users: int, seconds: float, headers: dict, request: dict, app=None) -> Tally:
    clients = [connect(url, headers, app) for _ in range(users)]
    clients[0].predict(prompt="warm-up", seed=1, api_name="/txt2img", **request)   # model load, not counted
    tally = Tally()
    began = time.monotonic()
    threads = [threading.Thread(target=user, args=(n + 1, c, request, began + seconds, tally), daemon=True)
               for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally.elapsed = (tally.last_done or time.monotonic()) - began
    for c in clients:
        c.close()
    return tally


def report(tally: Tally, users: int, seconds: float, url: str) -> None:
    done = tally.latencies
    print(f"url: {url}  users: {users}  seconds: {seconds:g}  (measured {tally.elapsed:.1f} s)")
    print(f"requests: {len(done) + len(tally.errors)}")
    print(f"failures: {len(tally.errors)}")
    for error in tally.errors[:5]:
        print(f"  {error}")
    if done:
        print(f"latency p50: {percentile(done, 50):.3f} s")
        print(f"latency p95: {percentile(done, 95):.3f} s")
        print(f"jobs per minute: {len(done) / tally.elapsed * 60:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/load.py", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/", help="the app (ignored with --start)")
    parser.add_argument("--users", type=int, default=4, help="concurrent users, one thread and Client each")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long users keep sending requests")
    parser.add_argument("--api-key", default="", help="sent as 'Authorization: Bearer KEY' (accounts mode)")
    parser.add_argument("--start", action="store_true", help="start python app.py on a free port first")
    parser.add_argument("--queue-workers", type=int, default=1, help="with --start: the app's consumer threads")
    parser.add_argument("--model", default="", help="catalogue id to ask for; default: the app's first model")
    parser.add_argument("--size", type=int, default=64, help="image width and height, pixels")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps per image")
    args = parser.parse_args(argv)

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    request = {"width": args.size, "height": args.size, "steps": args.steps}
    if args.model or args.start:
        request["model"] = args.model or "demo-sd15"
    app, url = None, args.url
    if args.start:
        work = pathlib.Path(tempfile.mkdtemp(prefix="atelier-load-"))
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        app = start_app(work, port, args.size, args.steps, args.queue_workers)
        print(f"started python app.py at {url} (data and log in {work})", flush=True)
    try:
        tally = run(url, args.users, args.seconds, headers, request, app)
    finally:
        if app is not None:
            app.terminate()
            try:
                app.wait(30)
            except subprocess.TimeoutExpired:
                app.kill()
    report(tally, args.users, args.seconds, url)
    return 1 if tally.errors or not tally.latencies else 0


if __name__ == "__main__":
    sys.exit(main())
