"""What live previews cost: the same txt2img through the runner without previews, with the family's latent-to-RGB
projection, and with the catalogue's tiny decoder (TAESD), alternating, and each one's time relative to none.

    python bench/preview.py [--runs 5] [--steps 30] [--size 512] [--model demo-sd15] [--device auto] [--threads 0]

Each run does what a worker does for a job's progress: `Runner.run` makes a preview when one is due (at most one
every 0.5 s, and each one's cost spaces out the next so they take under 5% of the run), and every preview is
encoded as the PNG the job row keeps. One warm-up run of each first; then `--runs` of each, alternating;
medians, and the share of each run's time the previews took by the runner's own count (`Result.preview_seconds`),
which other processes' load disturbs less than the ratio. The model's catalogue entry names its tiny decoder (`preview_vae`; demo-sd15's is a demo TAESD). On a
CPU that other processes also load, `--threads 1` keeps torch's threads from waiting on each other (two threads
on a busy 2-core machine made each step ten times slower, and the medians noise). This is a benchmark, not a
test.

Measured on the 2-core development CPU (demo-sd15, 30 steps, 5 runs, 1 thread), ratio to no previews and the
previews' share of the run: 256x256 (0.11 s a step): projection 0.98 and 1.0% (5 previews), demo TAESD 1.04 and
4.2% (5); 512x512 (1.05 s a step): projection 1.01 and 0.9% (30), demo TAESD 1.01 and 2.9% (30).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="demo-sd15")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    args = parser.parse_args()

    import torch

    from configs import CreditPrices, Limits, load_models
    from pipelines import Compiler, WorkflowSpec
    from pipelines.backend import DiffusersBackend
    from pipelines.devices import pick_device, pick_dtype
    from pipelines.model_cache import ModelCache
    from pipelines.model_hashes import ModelHasher
    from pipelines.runner import Runner
    from pipelines.spec import Txt2Img
    from pipelines.video_backend import VideoBackend
    from queueing.executor import preview_png

    device = pick_device(args.device)
    work = pathlib.Path(tempfile.mkdtemp(prefix="atelier-bench-preview-"))
    catalogue = load_models()
    compiler = Compiler(catalogue, (), Limits(), CreditPrices(), ModelHasher(work))
    cache = ModelCache(work, device, pick_dtype(device), capacity=1,
                       preview_vaes={m.id: m.preview_vae for m in catalogue if m.preview_vae})
    images = DiffusersBackend(cache, threads=args.threads)
    images.use_threads()
    videos = VideoBackend(cache, images.turns)
    runners = {"none": Runner(images, videos, preview_interval=0),
               "projection": Runner(images, videos, preview_decoder=lambda model: None),
               "taesd": Runner(images, videos, preview_decoder=cache.preview_decoder)}
    plan = compiler.compile(WorkflowSpec.single(Txt2Img(prompt="a lighthouse at dusk", model=args.model,
                                                        width=args.size, height=args.size, steps=args.steps,
                                                        seed=1234)))
    if cache.preview_decoder(plan.steps[0].model) is None:
        del runners["taesd"]
        print(f"{args.model} has no preview_vae in the catalogue: no TAESD row")

    def run(mode: str) -> tuple[float, int, float]:
        made = []

        def on_progress(p) -> None:
            if p.preview is not None:
                made.append(preview_png(p.preview))          # as the worker stores it on the job row

        started = time.perf_counter()
        result = runners[mode].run(plan, on_progress=on_progress)
        seconds = time.perf_counter() - started
        return seconds, len(made), result.preview_seconds / seconds

    for mode in runners:
        run(mode)                                            # warm-up: loads, first calls
    times = {mode: [] for mode in runners}
    counts = {mode: [] for mode in runners}
    shares = {mode: [] for mode in runners}
    for _ in range(args.runs):
        for mode in runners:
            seconds, previews, share = run(mode)
            times[mode].append(seconds)
            counts[mode].append(previews)
            shares[mode].append(share)

    base = statistics.median(times["none"])
    print(f"device {device}, {args.model}, {args.size}x{args.size}, {args.steps} steps, {args.runs} runs each, "
          f"{torch.get_num_threads()} torch threads, medians")
    print(f"{'previews':<12}{'s/run':>8}{'ratio':>8}{'previews/run':>14}{'their share':>13}")
    for mode in runners:
        median = statistics.median(times[mode])
        print(f"{mode:<12}{median:>8.2f}{median / base:>8.3f}{statistics.median(counts[mode]):>14.0f}"
              f"{statistics.median(shares[mode]):>12.1%}")
    print("their share: the time the run spent making, encoding and storing previews, of its whole time")


if __name__ == "__main__":
    main()
