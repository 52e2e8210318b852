"""How fast an idle Atelier starts a job: submit after `--idle` seconds of quiet (default 60) and read
created_at -> started_at from the job row. Huey's own SQLite polling backs off to 10 s when idle; our
waking storage should start the job within milliseconds in one process, and Redis's blocking reads
(`--queue-url redis://127.0.0.1:6379/0 --separate-worker`) as fast in a worker process of its own.

    python bench/pickup.py [--idle 60] [--rounds 3] [--queue-url URL] [--separate-worker]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queue-url", default="", help="ATELIER_QUEUE_URL (default: SQLite in the data folder)")
    parser.add_argument("--separate-worker", action="store_true",
                        help="run jobs in a `python -m queueing.worker` process instead of in this one")
    args = parser.parse_args()

    import app
    from auth import local_owner
    from configs import load_settings
    from pipelines import Txt2Img, WorkflowSpec
    from queueing import start_embedded_consumer

    data = tempfile.mkdtemp(prefix="atelier-pickup-")
    environ = {"ATELIER_DATA_DIR": data, "ATELIER_DEVICE": "cpu", "ATELIER_QUEUE_URL": args.queue_url,
               "ATELIER_WEB_ONLY": "1" if args.separate_worker else "",
               # A separate worker says it is running only once its engine is built (torch imported),
               # so the first call must not give up on it with "no worker is running" meanwhile.
               "ATELIER_WORKER_WAIT_SECONDS": "300"}
    atelier = app.build(load_settings(environ=environ))
    if args.separate_worker:
        worker = subprocess.Popen([sys.executable, "-m", "queueing.worker"], cwd=ROOT, env={**os.environ, **environ},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        consumer = None
    else:
        consumer, _ = start_embedded_consumer(atelier.huey, 1)
        atelier.executor.start(atelier.service.enqueue)
        atelier.executor.warm_up()
    owner = local_owner()
    spec = WorkflowSpec.single(Txt2Img(prompt="pickup", width=64, height=64, steps=1))
    atelier.service.wait(owner, atelier.service.submit(owner, spec).id, timeout=300)
    delays = []
    for round_ in range(args.rounds):
        time.sleep(args.idle)
        job = atelier.service.wait(owner, atelier.service.submit(owner, spec).id)
        delays.append((job.started_at - job.created_at) * 1000)
        print(f"round {round_ + 1}: idle {args.idle:.0f} s, queued -> started {delays[-1]:.1f} ms", flush=True)
    if consumer is not None:
        consumer.stop(graceful=True)
        atelier.executor.shutdown()
    else:
        worker.terminate()
        worker.wait(60)
    print(f"max pickup: {max(delays):.1f} ms")


if __name__ == "__main__":
    main()
