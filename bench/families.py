"""Each model family's txt2img (txt2vid for the video families) through our engine beside a plain diffusers call
on the same demo model, alternating, and the ratio per family (ours / plain; 1.00 = no cost of our own).

    python bench/families.py [--runs 5] [--steps 8] [--size 256] [--frames 9] [--device auto] [--only flux1 ...]

"Ours" is what a worker does for a job: compile the request (`Compiler`), then `Runner.run` the plan (model
cache, the sampler's scheduler built for the step, the family's call arguments, progress callbacks, the
environment record). "Plain" calls the same loaded pipeline directly with the same prompt, steps, size, guidance
and seed. One warm-up run of each first; then `--runs` of each, alternating; medians. On CUDA it also prints the
peak GPU memory of one of our runs. This is a benchmark, not a test.

The demo models are tiny, so on a CPU the ratio shows what our bookkeeping costs next to a short run. Measured on
the 2-core development CPU (torch 2.13.0+cpu, 256x256, 8 steps, 5 runs): see the closing note of issue 13.
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

DEMOS = {"sd15": "demo-sd15", "sdxl": "demo-sdxl", "flux1": "demo-flux1", "flux2": "demo-flux2-klein",
         "flux2-dev": "demo-flux2-dev",
         "sd35": "demo-sd35", "qwen-image": "demo-qwen-image", "z-image": "demo-z-image", "wan22": "demo-wan22",
         "ltx2": "demo-ltx2"}
PROMPT, SEED = "a lighthouse at dusk", 1234


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=9, help="frames of the video families' videos")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", nargs="*", default=list(DEMOS))
    args = parser.parse_args()

    import torch

    from configs import CreditPrices, Limits, load_models
    from pipelines import Compiler, WorkflowSpec
    from pipelines.backend import DiffusersBackend, prompting
    from pipelines.devices import pick_device, pick_dtype
    from pipelines.families import FAMILIES
    from pipelines.model_cache import ModelCache
    from pipelines.model_hashes import ModelHasher
    from pipelines.runner import Runner
    from pipelines.spec import Txt2Img, Txt2Vid
    from pipelines.video_backend import VideoBackend

    device = pick_device(args.device)
    work = pathlib.Path(tempfile.mkdtemp(prefix="atelier-bench-families-"))
    compiler = Compiler(load_models(), (), Limits(), CreditPrices(), ModelHasher(work))
    cache = ModelCache(work, device, pick_dtype(device), capacity=1)
    images = DiffusersBackend(cache)
    runner = Runner(images, VideoBackend(cache, images.turns))

    print(f"device {device}, {args.size}x{args.size}, {args.steps} steps, {args.runs} runs each, medians")
    print(f"{'family':<12}{'ours s':>9}{'plain s':>9}{'ratio':>7}{'peak GiB':>10}")
    for name in args.only:
        video = FAMILIES[name].media == "video"
        node = (Txt2Vid(prompt=PROMPT, model=DEMOS[name], width=args.size, height=args.size, steps=args.steps,
                        frames=args.frames, seed=SEED) if video else
                Txt2Img(prompt=PROMPT, model=DEMOS[name], width=args.size, height=args.size, steps=args.steps,
                        seed=SEED))
        size = min(args.size, 64) if video else args.size
        node = type(node)(**{**vars(node), "width": size, "height": size})

        def ours():
            return runner.run(compiler.compile(WorkflowSpec.single(node)))

        step = compiler.compile(WorkflowSpec.single(node)).steps[0]
        pipe = cache.get(step.model, "txt2vid" if video else "txt2img")
        extra = {"num_frames": step.frames} if video else {}

        def plain():
            return pipe(prompt=[PROMPT], num_inference_steps=step.steps, width=size, height=size,
                        generator=torch.Generator("cpu").manual_seed(SEED), output_type="np",
                        **prompting(step, 1), **extra)

        ours(), plain()                                  # warm-up: load, build, first-call costs
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        timed = {"ours": [], "plain": []}
        for _ in range(args.runs):
            for label, run in (("ours", ours), ("plain", plain)):
                started = time.perf_counter()
                run()
                timed[label].append(time.perf_counter() - started)
        peak = f"{torch.cuda.max_memory_allocated() / 1024 ** 3:10.2f}" if device.type == "cuda" else f"{'-':>10}"
        mine, theirs = statistics.median(timed["ours"]), statistics.median(timed["plain"])
        print(f"{name:<12}{mine:9.3f}{theirs:9.3f}{mine / theirs:7.2f}{peak}", flush=True)


if __name__ == "__main__":
    main()
