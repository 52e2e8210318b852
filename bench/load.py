"""Load on a running Atelier: N concurrent `gradio_client` users calling /txt2img for T seconds.

Each user is a thread with its own Client that asks for one small, cheap image after another (a
random seed each time, so every request is a real job, never a stored result). Prints requests,
failures (grouped by error, an httpx error with the request it broke), p50/p95 latency (submit to
image back, as a script sees it) and jobs per minute; exits with status 1 if any request failed. A
failed request whose progress had named its job is followed up by that id (/job_status, then
/artifact_info), as a script that lost its connection would, and counted as fetched if that worked.
The warm-up request (model load) is not counted.

    python bench/load.py --url http://127.0.0.1:7860/ --users 8 --seconds 60 [--api-key atl_...]
    python bench/load.py --start --users 4 --seconds 30     # starts its own app first
    python bench/load.py --start --users 30 --read-timeout 10    # as behind a proxy that drops idle connections

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
import collections
import concurrent.futures
import os
import pathlib
import re
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


def connect(url: str, headers: dict, app: subprocess.Popen | None, wait_s: float = 180.0,
            read_timeout: float | None = None):
    """A Client for `url`, retrying until the app answers (or `app` exits, or `wait_s` passes).
    `read_timeout`: seconds any of its connections may stay silent, the event stream's included (None:
    gradio_client's own, which never times the event stream out)."""
    from gradio_client import Client

    httpx_kwargs = {"timeout": read_timeout} if read_timeout else None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return Client(url, headers=headers or None, verbose=False, httpx_kwargs=httpx_kwargs)
        except Exception:
            if (app is not None and app.poll() is not None) or time.monotonic() > deadline:
                raise SystemExit(f"no Atelier answers at {url}") from None
            time.sleep(0.5)


JOB_ID = re.compile(r"^job ([0-9a-f]{32}): ")      # how the app's progress descriptions begin


class Tally:
    """Latencies of the requests that succeeded and the errors of those that failed, from every thread;
    `recovered` counts the failed ones whose images were then fetched by job id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.recovered = 0
        self.last_done = 0.0
        self.elapsed = 0.0     # from the start to the last response, seconds

    def add(self, latency: float | None, error: str = "", recovered: bool = False) -> None:
        with self.lock:
            if error:
                self.errors.append(error)
                self.recovered += recovered
            else:
                self.latencies.append(latency)
            self.last_done = time.monotonic()


def user(number: int, client, request: dict, until: float, tally: Tally) -> None:
    """One user: request after request until `until` (the one running then is finished and counted). A
    request that fails after its progress named the job is followed up as a script would: the job's
    images fetched by its id (`fetch_by_id`)."""
    i = 0
    while time.monotonic() < until:
        i += 1
        started = time.perf_counter()
        job = client.submit(prompt=f"load test, user {number}, request {i}", seed=-1, api_name="/txt2img",
                            **request)
        job_id = ""
        while not concurrent.futures.wait([job], timeout=0.2).done:   # returns the moment the job ends
            job_id = heard_job_id(job) or job_id
        try:
            job.result()
        except Exception as e:    # noqa: BLE001 - every failure is counted and reported
            tally.add(None, f"user {number}: {describe(e)}" + (f" [job {job_id}]" if job_id else ""),
                      recovered=bool(job_id) and fetch_by_id(client, job_id))
        else:
            tally.add(time.perf_counter() - started)


def heard_job_id(job) -> str:
    """The job id the call's progress named, "" if it named none (or said nothing)."""
    try:
        units = job.status().progress_data or []
    except Exception:             # noqa: BLE001 - a broken call may have no status to read
        return ""
    found = JOB_ID.match(units[-1].desc or "") if units else None
    return found.group(1) if found else ""


def fetch_by_id(client, job_id: str, wait_s: float = 300.0) -> bool:
    """Whether the images of `job_id` could be fetched after its call failed: /job_status until the job
    finishes, then /artifact_info for each of its artifacts."""
    deadline = time.monotonic() + wait_s
    try:
        while (status := client.predict(job_id, api_name="/job_status"))["status"] in ("queued", "running"):
            if time.monotonic() > deadline:
                return False
            time.sleep(1.0)
        return status["status"] == "succeeded" and all(
            os.path.getsize(client.predict(a, api_name="/artifact_info")[0]) > 0 for a in status["artifact_ids"])
    except Exception:             # noqa: BLE001 - not fetched, whatever the reason; the failure is counted
        return False


def describe(error: Exception) -> str:
    """The error's type and message, and for an httpx error the request it broke (which read timed out)."""
    try:
        request = error.request          # httpx errors carry it; a property that raises when unset
    except (AttributeError, RuntimeError):
        request = None
    where = f" ({request.method} {request.url.path})" if request is not None else ""
    return f"{type(error).__name__}{where}: {error}"


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99) of `values`, interpolated; the only value when there is one."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run(url: str, users: int, seconds: float, headers: dict, request: dict, app=None,
        read_timeout: float | None = None) -> Tally:
    warm_up = connect(url, headers, app)      # the model load: not counted, and under no read timeout
    warm_up.predict(prompt="warm-up", seed=1, api_name="/txt2img", **request)
    warm_up.close()
    clients = [connect(url, headers, app, read_timeout=read_timeout) for _ in range(users)]
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
    print(f"failures: {len(tally.errors)}" + (f" (images fetched afterwards by job id: {tally.recovered})"
                                              if tally.errors else ""))
    kinds = collections.Counter(re.sub(r"user \d+: |\[job \w+\]", "", error).strip() for error in tally.errors)
    for kind, count in kinds.most_common(5):
        print(f"  {count} x {kind}")
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
    parser.add_argument("--read-timeout", type=float, default=None,
                        help="seconds a client connection may stay silent, the event stream's included, as behind "
                             "a proxy with an idle timeout (default: gradio_client's, none for the event stream)")
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
        tally = run(url, args.users, args.seconds, headers, request, app, args.read_timeout)
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
