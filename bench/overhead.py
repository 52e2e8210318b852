"""What our whole stack costs on top of diffusers: the same 20-step generation on the same model,
once through client -> app -> queue -> worker -> storage and once as a plain diffusers call,
alternating, 5 runs each (after one warm-up run of each). Prints both medians and, last,
`ratio: X.XX` (stack / plain).

    python bench/overhead.py [--runs 5] [--steps 20]

The model is the demo SD1.5 recipe at "benchmark" size (UNet 128/256 with two layers, a /2 VAE, so
a 64x64 image has a 32x32 latent): one plain run takes a few seconds on a 2-core CPU, so the ratio
measures our overhead rather than noise. This is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SIZE, SEED, PROMPT = 64, 1234, "a lighthouse at dusk"


def build_model(folder: pathlib.Path) -> None:
    from pipelines.demo_model import build_sd15

    build_sd15(seed=0, unet_blocks=(128, 256), layers_per_block=2, vae_blocks=(8, 16),
               norm_groups=8).save_pretrained(folder)


def start_app(work: pathlib.Path, model: pathlib.Path, port: int) -> subprocess.Popen:
    catalogue = work / "models.toml"
    catalogue.write_text(f'[[model]]\nid = "bench"\nfamily = "sd15"\nsource = "folder:{model}"\n'
                         f'width = {SIZE}\nheight = {SIZE}\nsteps = 20\ncfg_scale = 7.0\n'
                         'sampler = "euler"\nschedule = "normal"\n')
    env = {**os.environ, "ATELIER_DATA_DIR": str(work / "data"), "ATELIER_CATALOGUE": str(catalogue),
           "ATELIER_PORT": str(port), "ATELIER_DEVICE": "cpu"}
    return subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def connect(url: str, app: subprocess.Popen):
    from gradio_client import Client

    deadline = time.monotonic() + 120
    while True:
        try:
            return Client(url, verbose=False)
        except Exception:
            if app.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the app did not start") from None
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--port", type=int, default=7891)
    args = parser.parse_args()

    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    work = pathlib.Path(tempfile.mkdtemp(prefix="atelier-bench-"))
    model = work / "model"
    build_model(model)
    pipe = StableDiffusionPipeline.from_pretrained(model, local_files_only=True)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="linspace")
    pipe.set_progress_bar_config(disable=True)

    # Each round uses a new seed, on both sides: Atelier serves an identical request from its stored
    # result, which would measure the database instead of the pipeline.
    def plain(seed: int) -> None:
        pipe(PROMPT, num_inference_steps=args.steps, width=SIZE, height=SIZE, guidance_scale=7.0,
             generator=torch.Generator("cpu").manual_seed(seed)).images[0]

    app = start_app(work, model, args.port)
    client = connect(f"http://127.0.0.1:{args.port}/", app)
    try:

        def stack(seed: int) -> None:
            client.predict(prompt=PROMPT, steps=args.steps, seed=seed, api_name="/txt2img")

        stack(SEED - 1)      # warm-up: imports in the worker, model load, first compile of kernels
        plain(SEED - 1)
        times = {"stack": [], "plain": []}
        for run in range(args.runs):
            for name, fn in (("stack", stack), ("plain", plain)):
                started = time.perf_counter()
                fn(SEED + run)
                times[name].append(time.perf_counter() - started)
            print(f"run {run + 1}: stack {times['stack'][-1]:.3f} s, plain {times['plain'][-1]:.3f} s", flush=True)
    finally:
        client.close()
        app.terminate()
        try:
            app.wait(30)
        except subprocess.TimeoutExpired:
            app.kill()
    stack_median, plain_median = statistics.median(times["stack"]), statistics.median(times["plain"])
    print(f"torch threads: {torch.get_num_threads()}, steps: {args.steps}, size: {SIZE}x{SIZE}")
    print(f"stack median: {stack_median:.3f} s")
    print(f"plain median: {plain_median:.3f} s")
    print(f"ratio: {stack_median / plain_median:.2f}")


if __name__ == "__main__":
    main()
