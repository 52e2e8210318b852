"""How long a short job waits behind a long one on one device, with turns (pipelines/turns.py) and without them
(a job kept the device for whole nodes, as the backends' one lock did before issue 14, item 8).

    python bench/fairness.py [--long-steps 30] [--tile 32] [--short-steps 20] [--quantum 2] [--runs 3]
                             [--threads 1] [--device auto]

The scenario of the issue on the demo models: one thread runs a long upscale (demo-upscaler-x4 at x4, in
`--tile` pixel tiles of `--long-steps` steps each, after a 2-step txt2img makes its 64x64 input); once it has run
5 steps, a second thread runs a `--short-steps` txt2img on demo-sd15. For each mode it prints the short job's
wait (from its start to its first step), its run (first step to end), its total, the long job's total, and the
long job's total when it runs alone in that mode (what taking turns costs when nobody waits); and the short
job's total when it runs alone, for reference: medians of `--runs`, the modes alternating. Both jobs go
through `Runner.run` on one engine, as two consumer threads of a worker do, each with `--threads` torch threads
(0: torch's default; on a busy CPU more than one mostly spins). One warm-up run of each loads the models first.
This is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long-steps", type=int, default=30, help="upscaler steps per tile")
    parser.add_argument("--tile", type=int, default=32, help="upscaler tile size (64x64 input: 32 gives 9 tiles)")
    parser.add_argument("--short-steps", type=int, default=20)
    parser.add_argument("--quantum", type=float, default=2.0, help="turn_seconds of the run with turns")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each job (0: torch's default)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    from configs import CreditPrices, Limits, load_models
    from pipelines import Compiler, Txt2Img, WorkflowSpec
    from pipelines.backend import DiffusersBackend
    from pipelines.devices import pick_device, pick_dtype
    from pipelines.model_cache import ModelCache
    from pipelines.model_hashes import ModelHasher
    from pipelines.runner import Runner
    from pipelines.spec import Link, Node, Upscale
    from pipelines.turns import DeviceTurns
    from pipelines.video_backend import VideoBackend

    device = pick_device(args.device)
    work = pathlib.Path(tempfile.mkdtemp(prefix="atelier-bench-fairness-"))
    compiler = Compiler(load_models(), (), Limits(), CreditPrices(), ModelHasher(work))
    long_plan = compiler.compile(WorkflowSpec(nodes=(
        Node("gen", Txt2Img(prompt="a harbour at dawn", model="demo-sd15", width=64, height=64, steps=2, seed=1)),
        Node("up", Upscale(upscaler="demo-upscaler-x4", scale=4.0, steps=args.long_steps, tile_size=args.tile,
                           seed=2), (("image", Link("gen", "images")),)))))
    short_plan = compiler.compile(WorkflowSpec.single(Txt2Img(prompt="a quick sketch", model="demo-sd15", width=64,
                                                              height=64, steps=args.short_steps, seed=3)))
    cache = ModelCache(work, device, pick_dtype(device), capacity=2)

    def engine(quantum: float | None) -> Runner:
        turns = DeviceTurns(quantum)
        return Runner(DiffusersBackend(cache, threads=args.threads, turns=turns), VideoBackend(cache, turns))

    def alone(plan, quantum: float | None = None) -> float:
        started = time.perf_counter()
        engine(quantum).run(plan)
        return time.perf_counter() - started

    def contended(runner: Runner) -> dict[str, float]:
        """The long job in one thread, the short one started in another once the long one ran 5 upscale steps."""
        upscaling = threading.Event()
        times: dict[str, float] = {}

        def on_long(p) -> None:
            if p.node_id == "up" and p.step >= 5:
                upscaling.set()

        def long() -> None:
            started = time.perf_counter()
            runner.run(long_plan, on_progress=on_long)
            times["long"] = time.perf_counter() - started

        def on_short(p) -> None:
            if p.step >= 1:                      # step 0 is reported while it waits for its first turn
                times.setdefault("first_step", time.perf_counter())

        thread = threading.Thread(target=long, name="long")
        thread.start()
        upscaling.wait()
        started = time.perf_counter()
        runner.run(short_plan, on_progress=on_short)
        ended = time.perf_counter()
        thread.join()
        return {"wait": times["first_step"] - started, "run": ended - times["first_step"], "total": ended - started,
                "long": times["long"]}

    engine(None).run(long_plan)                  # warm-up: load both models, first-call costs
    alone(short_plan)
    print(f"device {device}; long: x4 upscale of 64x64 in {args.tile} px tiles, {args.long_steps} steps each; "
          f"short: {args.short_steps}-step txt2img 64x64")
    modes = {f"turns ({args.quantum:g} s quantum)": args.quantum, "whole nodes (old lock)": None}
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in modes}
    by_itself = []
    for _ in range(args.runs):
        by_itself.append(alone(short_plan))
        for label, quantum in modes.items():
            runs[label].append({**contended(engine(quantum)), "long alone": alone(long_plan, quantum)})
    print(f"short job alone: {statistics.median(by_itself):.2f} s (median of {args.runs})")
    print(f"{'mode':<24}{'wait s':>8}{'run s':>8}{'total s':>9}{'long s':>8}{'long alone s':>14}")
    for label, measured in runs.items():
        median = {key: statistics.median(m[key] for m in measured) for key in measured[0]}
        print(f"{label:<24}{median['wait']:8.2f}{median['run']:8.2f}{median['total']:9.2f}{median['long']:8.2f}"
              f"{median['long alone']:14.2f}", flush=True)


if __name__ == "__main__":
    main()
