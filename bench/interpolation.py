"""How fast frame interpolation runs: optical flow (OpenCV, CPU) against a learned interpolator of RIFE
4.6's full size (random weights: the same arithmetic as the real ones) on the chosen device, on the
same frames, side by side. Prints milliseconds per new frame for each and `ratio: X.XX` (learned / flow).

    python bench/interpolation.py [--device cuda] [--dtype float16] [--width 1024] [--height 576]

This is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402

from pipelines.interpolate import interpolate  # noqa: E402
from pipelines.learned_interpolation import FlowNet, interpolate_learned  # noqa: E402


def clip(width: int, height: int, count: int) -> list[PIL.Image.Image]:
    """A square sliding across a gradient: real motion for the flow to find."""
    ys, xs = np.mgrid[0:height, 0:width]
    frames = []
    for k in range(count):
        pixels = np.stack([xs * 255 // width, ys * 255 // height, np.full_like(xs, 96)], -1).astype(np.uint8)
        x = 40 + k * 12
        pixels[height // 3:height // 3 + 80, x:x + 80] = (250, 250, 250)
        frames.append(PIL.Image.fromarray(pixels))
    return frames


def per_frame(run, made: int, runs: int) -> float:
    run()                                                  # warm-up
    times = []
    for _ in range(runs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times) / made * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float16" if torch.cuda.is_available() else "float32")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=144)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    frames = clip(args.width, args.height, args.frames)
    made = (args.frames - 1) * (args.factor - 1)
    net = FlowNet().eval().to(device=args.device, dtype=getattr(torch, args.dtype))
    print(f"{args.width}x{args.height}, {args.frames} frames x{args.factor} ({made} new), learned on {args.device} "
          f"{args.dtype}, torch {torch.__version__}")
    flow = per_frame(lambda: interpolate(frames, args.factor), made, args.runs)
    learned = per_frame(lambda: interpolate_learned(net, frames, args.factor), made, args.runs)
    print(f"optical flow (CPU): {flow:.1f} ms per new frame")
    print(f"RIFE 4.6 size ({args.device}): {learned:.1f} ms per new frame")
    print(f"ratio: {learned / flow:.2f}")
    if torch.cuda.is_available():
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
