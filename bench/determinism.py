"""Which process settings change the bytes a job makes: the same plans, run on the tiny demo models
through the real Runner, once per setting, each in a fresh process, compared with a baseline run.

    python bench/determinism.py [--work DIR] [--only NAME ...] [--encoders DIR ...] [--verbose]

Every setting runs in its own child process (ATEN_CPU_CAPABILITY is read when torch is imported, and
interop threads can be set only before the first parallel work), with the process defaults but for
the one setting. The plans: txt2img on the demo SD1.5 (6 seeds, 4 Euler steps) and the demo SDXL
(2 seeds, DPM++ 2M Karras), AnimateDiff txt2vid (8 frames) and txt2img -> SVD img2vid (8 frames), all
64x64. Each output is encoded as the worker encodes it (PNG with a fixed text chunk; MP4 through the
bundled ffmpeg), and the report gives, per setting, how many outputs differ from the baseline (in the
pixels made, then in the file bytes) and the largest difference of one pixel channel, in levels of
0-255, in the pixels made and in the files as decoded again (H.264 can turn a one-level difference
into a larger one, or absorb it).

With `--encoders DIR` (a folder that `pip install --target DIR --no-deps` filled with other versions
of Pillow and imageio-ffmpeg), the baseline's pixels are also encoded again with those, which shows
what the PNG zlib and the ffmpeg build do to the file bytes alone; and the baseline PNGs' scanlines are
deflated again by Python's own zlib, which shows whether that zlib would write the same PNG bytes.

The first row, "baseline again", runs the baseline a second time: it must show no difference, or
nothing else in the table means anything. This is a measurement, not a test; a full run takes about
7 minutes on a 2-core CPU (demo models are built once, under --work).

Measured on the 2-core AMD EPYC (AVX2) development machine, torch 2.13.0+cpu, Pillow 12.3.0 (zlib-ng
2.3.3), imageio-ffmpeg 0.8.1 (ffmpeg 9.0.2); 11 outputs (9 PNGs, 2 MP4s):

    setting                           pixels differ  files differ  max levels  in files
    baseline again                                0             0           0         0
    torch threads 1                               9             8           1        24
    torch threads 4                               2             2           1        24
    interop threads 1                             0             0           0         0
    ATEN_CPU_CAPABILITY=default                   7             7           1        24
    ONEDNN_MAX_CPU_ISA=AVX                        9             8           1        28
    MKL_ENABLE_INSTRUCTIONS=SSE4_2                0             0           0         0
    deterministic algorithms                      0             0           0         0
    float32 matmul precision medium               0             0           0         0
    mkldnn off                                    8             8           1        25
    flush denormal                                0             0           0         0
    Pillow 10.4.0, ffmpeg 4.2.2                   0             2 (MP4s)    0         0
    Pillow 9.5.0, same ffmpeg                     0             0           0         0

and 9 of 9 PNG streams deflated by Python's zlib 1.2.13 differ from Pillow's zlib-ng ones. (Pillow
9.5 and 10.4 report "zlib 1.2.13" but write the bytes 12.3 does, so their wheels' zlib evidently deflates as
zlib-ng does.) DiffusersBackend.environment() records what changed bytes here.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CATALOGUE = """
[[model]]
id = "demo-sd15"
family = "sd15"
source = "demo"
width = 64
height = 64
steps = 4
cfg_scale = 7.0
sampler = "euler"
schedule = "normal"

[[model]]
id = "demo-sdxl"
family = "sdxl"
source = "demo"
width = 64
height = 64
steps = 4
cfg_scale = 5.0
sampler = "dpmpp_2m"
schedule = "karras"

[[model]]
id = "demo-svd"
family = "svd"
source = "demo"
width = 64
height = 64
frames = 8
fps = 7
steps = 2
cfg_scale = 3.0

[[model]]
id = "demo-motion-adapter"
family = "animatediff"
base_family = "sd15"
source = "demo"
width = 64
height = 64
frames = 8
fps = 8
steps = 3
cfg_scale = 7.5
sampler = "ddim"
schedule = "normal"
"""

# name -> (environment variables for the child, Python run in the child after `import torch`).
SETTINGS: dict[str, tuple[dict[str, str], str]] = {
    "baseline again": ({}, ""),
    "torch threads 1": ({}, "torch.set_num_threads(1)"),
    "torch threads 4": ({}, "torch.set_num_threads(4)"),
    "interop threads 1": ({}, "torch.set_num_interop_threads(1)"),
    "ATEN_CPU_CAPABILITY=default": ({"ATEN_CPU_CAPABILITY": "default"}, ""),
    "ONEDNN_MAX_CPU_ISA=AVX": ({"ONEDNN_MAX_CPU_ISA": "AVX"}, ""),
    "MKL_ENABLE_INSTRUCTIONS=SSE4_2": ({"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}, ""),
    "deterministic algorithms": ({}, "torch.use_deterministic_algorithms(True)"),
    "float32 matmul precision medium": ({}, "torch.set_float32_matmul_precision('medium')"),
    "mkldnn off": ({}, "torch.backends.mkldnn.enabled = False"),
    "flush denormal": ({}, "torch.set_flush_denormal(True)"),
}


def plans(settings):
    """The compiled plans, by name."""
    from configs import CreditPrices, Limits, load_models
    from pipelines import Compiler
    from pipelines.model_hashes import ModelHasher
    from pipelines.spec import Img2Vid, Link, Node, Txt2Img, Txt2Vid, WorkflowSpec

    compiler = Compiler(load_models(settings.catalogue), (), Limits(), CreditPrices(), ModelHasher(settings.models_dir))
    specs = {
        "sd15 txt2img": WorkflowSpec.single(Txt2Img(prompt="a lighthouse at dusk", model="demo-sd15", seed=1,
                                                    batch_size=6)),
        "sdxl txt2img": WorkflowSpec.single(Txt2Img(prompt="a red fox", model="demo-sdxl", seed=7, batch_size=2)),
        "animatediff txt2vid": WorkflowSpec.single(Txt2Vid(prompt="waves", model="demo-sd15", seed=3)),
        "svd img2vid": WorkflowSpec(nodes=(
            Node("image", Txt2Img(prompt="a boat", model="demo-sd15", seed=11)),
            Node("video", Img2Vid(model="demo-svd", seed=5), (("image", Link("image", "images")),)))),
    }
    return {name: compiler.compile(spec) for name, spec in specs.items()}


def load_settings(work: pathlib.Path):
    from configs import load_settings as load

    catalogue = work / "models.toml"
    catalogue.write_text(CATALOGUE)
    return load(environ={"ATELIER_DATA_DIR": str(work / "data"), "ATELIER_CATALOGUE": str(catalogue),
                         "ATELIER_DEVICE": "cpu"})


def _save(stem: pathlib.Path, made) -> None:
    """Write an output's pixels (`stem`.npy) and its file (`stem`.png or .mp4, encoded as the worker
    encodes it, with a fixed text chunk so only the pixels and the encoder decide the bytes)."""
    import numpy as np
    import PIL.Image

    from storage.artifacts import encode_png
    from storage.video import encode_mp4

    texts = {"atelier": stem.name}
    if isinstance(made, PIL.Image.Image):
        np.save(f"{stem}.npy", np.asarray(made.convert("RGB")))
        pathlib.Path(f"{stem}.png").write_bytes(encode_png(made, texts))
    else:
        np.save(f"{stem}.npy", np.stack([np.asarray(f.convert("RGB")) for f in made.frames]))
        pathlib.Path(f"{stem}.mp4").write_bytes(encode_mp4(made.frames, made.fps, texts))
        pathlib.Path(f"{stem}.fps").write_text(repr(made.fps))


def child(work: pathlib.Path, setup: str, out: pathlib.Path) -> None:
    """Run every plan with `setup` applied; write each output's pixels and file under `out`."""
    import torch

    exec(setup, {"torch": torch})
    from queueing.executor import build_runner

    settings = load_settings(work)
    runner = build_runner(settings)
    environment = None
    for name, plan in plans(settings).items():
        result = runner.run(plan)
        environment = result.environment
        for output in result.outputs:
            _save(out / f"{name}.{output.step_id}.{output.index}", output.image or output.video)
    facts = {"threads": torch.get_num_threads(), "interop": torch.get_num_interop_threads(),
             "capability": torch.backends.cpu.get_cpu_capability(), "environment": environment}
    (out / "facts.json").write_text(json.dumps(facts))


def reencode(base: pathlib.Path, out: pathlib.Path) -> None:
    """Encode the baseline's pixels again, with whatever Pillow and imageio-ffmpeg this process imports."""
    import numpy as np
    import PIL.Image

    from pipelines.video_backend import Video

    for array in sorted(base.glob("*.npy")):
        pixels, fps = np.load(array), base / f"{array.stem}.fps"
        made = (Video([PIL.Image.fromarray(f) for f in pixels], float(fps.read_text())) if fps.exists()
                else PIL.Image.fromarray(pixels))
        _save(out / array.stem, made)


def encoders() -> str:
    """This process's Pillow (and the zlib it compresses PNGs with) and ffmpeg."""
    import imageio_ffmpeg
    import PIL
    import PIL.features

    zlib = (f"zlib-ng {PIL.features.version('zlib_ng')}" if "zlib_ng" in PIL.features.features
            and PIL.features.check("zlib_ng") else f"reports zlib {PIL.features.version('zlib')}")
    return f"Pillow {PIL.__version__} ({zlib}), ffmpeg {imageio_ffmpeg.get_ffmpeg_version()}"


def deflate_check(base: pathlib.Path) -> str:
    """Whether Python's zlib deflates the baseline PNGs' scanlines to the bytes Pillow's zlib did (at
    Pillow's settings: level 6, 32 KiB window, memLevel 9, default strategy)."""
    import struct
    import zlib

    pngs = sorted(base.glob("*.png"))
    differ = 0
    for path in pngs:
        data, position, stream = path.read_bytes(), 8, b""
        while position < len(data):
            length, kind = struct.unpack(">I4s", data[position:position + 8])
            stream += data[position + 8:position + 8 + length] if kind == b"IDAT" else b""
            position += 12 + length
        deflate = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY)
        differ += deflate.compress(zlib.decompress(stream)) + deflate.flush() != stream
    return f"{differ} of {len(pngs)} PNG streams differ when deflated by Python's zlib {zlib.ZLIB_RUNTIME_VERSION}"


def run_child(work: pathlib.Path, name: str, env: dict[str, str], args: list[str]) -> pathlib.Path:
    """Run this script with `args` in a child process with `env` added; the folder of its outputs (its
    stderr goes to log.txt there)."""
    out = work / "runs" / name.replace(" ", "_").replace("=", "-").replace("/", "_")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with open(out / "log.txt", "w") as log:
        done = subprocess.run([sys.executable, __file__, "--work", str(work), "--out", str(out), *args],
                              env={**os.environ, **env}, stderr=log, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{name!r} failed; see {out / 'log.txt'}")
    return out


def _decoded(path: pathlib.Path):
    """The pixels of a PNG or MP4 file, as the Gallery would show them."""
    import numpy as np
    import PIL.Image

    from storage.video import read_mp4

    if path.suffix == ".mp4":
        return np.stack([np.asarray(f.convert("RGB")) for f in read_mp4(path.read_bytes())[0]]).astype(int)
    with PIL.Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def compare(base: pathlib.Path, other: pathlib.Path) -> tuple[int, int, int, int, int, list[str]]:
    """(outputs, pixels differ, files differ, largest channel difference in the pixels made, the same in
    the decoded files, the names of the outputs whose files differ)."""
    import numpy as np

    outputs = pixels = files = worst = worst_file = 0
    differing = []
    for array in sorted(base.glob("*.npy")):
        outputs += 1
        a, b = np.load(array).astype(int), np.load(other / array.name).astype(int)
        level = int(np.abs(a - b).max())
        pixels += level > 0
        worst = max(worst, level)
        encoded = next(p for p in base.glob(array.stem + ".*") if p.suffix in (".png", ".mp4"))
        if encoded.read_bytes() != (other / encoded.name).read_bytes():
            files += 1
            differing.append(array.stem)
            worst_file = max(worst_file, int(np.abs(_decoded(encoded) - _decoded(other / encoded.name)).max()))
    return outputs, pixels, files, worst, worst_file, differing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=pathlib.Path,
                        default=pathlib.Path(tempfile.gettempdir()) / "atelier-determinism")
    parser.add_argument("--only", nargs="*", help="settings to measure (default: all)")
    parser.add_argument("--encoders", type=pathlib.Path, action="append", default=[],
                        help="a folder holding other versions of Pillow and/or imageio-ffmpeg (pip install --target "
                             "DIR --no-deps ...): the baseline's pixels are encoded again with them; repeatable")
    parser.add_argument("--verbose", action="store_true", help="name the outputs whose files differ")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--reencode", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child is not None:
        child(args.work, args.child, args.out)
        return
    if args.reencode is not None:
        reencode(args.reencode, args.out)
        (args.out / "encoders.txt").write_text(encoders())
        return
    base = run_child(args.work, "baseline", {}, ["--child", ""])
    facts = json.loads((base / "facts.json").read_text())
    print(f"baseline: torch threads {facts['threads']}, interop {facts['interop']}, capability "
          f"{facts['capability']}, {encoders()}\n  environment {json.dumps(facts['environment'])}\n"
          f"  {deflate_check(base)}")
    print(f"{'setting':44} {'outputs':>7} {'pixels differ':>13} {'files differ':>12} {'max levels':>10} "
          f"{'in files':>8}")
    runs = [(name, env, ["--child", setup]) for name, (env, setup) in SETTINGS.items()
            if not args.only or name in args.only]
    runs += [(f"encoders from {folder}", {"PYTHONPATH": str(folder.resolve())}, ["--reencode", str(base)])
             for folder in args.encoders]
    for name, env, child_args in runs:
        other = run_child(args.work, name, env, child_args)
        if (other / "encoders.txt").exists():
            name = (other / "encoders.txt").read_text()
        outputs, pixels, files, worst, worst_file, differing = compare(base, other)
        print(f"{name:44} {outputs:7} {pixels:13} {files:12} {worst:10} {worst_file:8}", flush=True)
        if args.verbose and differing:
            print("    files differ: " + ", ".join(differing))


if __name__ == "__main__":
    main()
