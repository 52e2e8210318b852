"""What our video path costs on top of diffusers: the same img2vid (SVD) and txt2vid (AnimateDiff) runs on
the same demo models, once through our VideoBackend (model cache, chunked decoding with progress and
cancel checks, PIL frames) and once as a plain pipeline call with the same arguments, alternating,
`--runs` runs each after one warm-up. Prints both medians and `ratio: X.XX` (ours / plain) per family,
the peak GPU memory on CUDA, and whether two runs of ours gave identical frames.

    python bench/video.py [--device cuda] [--dtype float16] [--size 256] [--frames 14] [--steps 10]

The models are the tiny demo ones (random weights), so the ratio measures our overhead, not the
quality; on a GPU use a larger --size so a run takes long enough to time. This is a benchmark, not a test.
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

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402

from pipelines.model_cache import ModelCache  # noqa: E402
from pipelines.model_hashes import demo_hash  # noqa: E402
from pipelines.plan import Img2VidStep, ModelRef, Txt2VidStep  # noqa: E402
from pipelines.turns import DeviceTurns  # noqa: E402
from pipelines.video_backend import VideoBackend  # noqa: E402

SEED, PROMPT = 1234, "a paper boat on a river"


def ref(model_id: str, family: str) -> ModelRef:
    return ModelRef(id=model_id, family=family, source="demo", hash="sha256:" + demo_hash(model_id))


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def compare(name: str, ours, plain, runs: int) -> None:
    ours(), plain()                                     # warm-up: loads, kernels, caches
    mine, theirs = [], []
    for _ in range(runs):
        mine.append(timed(ours))
        theirs.append(timed(plain))
    a, b = statistics.median(mine), statistics.median(theirs)
    print(f"{name}: ours {a:.3f} s, plain diffusers {b:.3f} s (medians of {runs})")
    print(f"{name} ratio: {a / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float16" if torch.cuda.is_available() else "float32")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=4, help="decode_chunk_size")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f"device {device}, dtype {args.dtype}, torch {torch.__version__}, {args.size}x{args.size}, "
          f"{args.frames} frames, {args.steps} steps, decode chunk {args.chunk}")

    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as work:
        cache = ModelCache(pathlib.Path(work), device, dtype)
        video = VideoBackend(cache, DeviceTurns())
        image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (args.size, args.size, 3),
                                                                      dtype=np.uint8))
        size = {"width": args.size, "height": args.size}
        svd_step = Img2VidStep(id="1", inputs=(("image", "0"),), model=ref("demo-svd", "svd"), frames=args.frames,
                               fps=7.0, seeds=(SEED,), steps=args.steps, motion_bucket_id=127,
                               noise_aug_strength=0.02, min_cfg_scale=1.0, cfg_scale=3.0,
                               decode_chunk_size=args.chunk, **size)
        svd = cache.video(svd_step.model)

        def ours_svd():
            return video.img2vid(svd_step, [image], lambda *a, **k: None)

        def plain_svd():
            return svd(image=image, num_frames=args.frames, num_inference_steps=args.steps, fps=7,
                       decode_chunk_size=args.chunk, generator=torch.Generator("cpu").manual_seed(SEED), **size)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        compare("img2vid", ours_svd, plain_svd, args.runs)
        first, second = ours_svd()[0].frames, ours_svd()[0].frames
        print("img2vid deterministic:", all(np.array_equal(np.asarray(a), np.asarray(b))
                                            for a, b in zip(first, second)),
              "| frame std:", round(float(np.asarray(first[-1]).std()), 2))

        ad_step = Txt2VidStep(id="1", model=ref("demo-sd15", "sd15"), motion_adapter=ref("demo-motion-adapter",
                              "animatediff"), prompt=PROMPT, negative_prompt="", steps=args.steps, cfg_scale=7.5,
                              sampler="ddim", schedule="normal", seeds=(SEED,), frames=args.frames, fps=8.0,
                              decode_chunk_size=args.chunk, **size)
        animate = cache.animatediff(ad_step.model, ad_step.motion_adapter)

        def ours_ad():
            return video.txt2vid(ad_step, lambda *a, **k: None)

        def plain_ad():
            return animate(PROMPT, num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=7.5,
                           decode_chunk_size=args.chunk, generator=torch.Generator("cpu").manual_seed(SEED), **size)

        compare("txt2vid", ours_ad, plain_ad, args.runs)
        first, second = ours_ad()[0].frames, ours_ad()[0].frames
        print("txt2vid deterministic:", all(np.array_equal(np.asarray(a), np.asarray(b))
                                            for a, b in zip(first, second)),
              "| frame std:", round(float(np.asarray(first[-1]).std()), 2))
        if device.type == "cuda":
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
