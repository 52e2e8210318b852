"""How fast an idle single-process Atelier starts a job: submit after `--idle` seconds of quiet
(default 60) and read created_at -> started_at from the job row. Huey's own SQLite polling backs
off to 10 s when idle; our waking storage should start the job within milliseconds.

    python bench/pickup.py [--idle 60] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import pathlib
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
    args = parser.parse_args()

    import app
    from auth import local_owner
    from configs import load_settings
    from pipelines import Txt2Img, WorkflowSpec
    from queueing import start_embedded_consumer

    data = tempfile.mkdtemp(prefix="atelier-pickup-")
    atelier = app.build(load_settings(environ={"ATELIER_DATA_DIR": data, "ATELIER_DEVICE": "cpu"}))
    consumer, _ = start_embedded_consumer(atelier.huey, 1)
    owner = local_owner()
    atelier.executor.warm_up()
    spec = WorkflowSpec.single(Txt2Img(prompt="pickup", width=64, height=64, steps=1))
    atelier.service.wait(owner, atelier.service.submit(owner, spec).id)
    delays = []
    for round_ in range(args.rounds):
        time.sleep(args.idle)
        job = atelier.service.wait(owner, atelier.service.submit(owner, spec).id)
        delays.append((job.started_at - job.created_at) * 1000)
        print(f"round {round_ + 1}: idle {args.idle:.0f} s, queued -> started {delays[-1]:.1f} ms", flush=True)
    consumer.stop(graceful=True)
    print(f"max pickup: {max(delays):.1f} ms")


if __name__ == "__main__":
    main()
