"""How long quoting a request takes (issue 12, item 2): the compiler with 20 catalogue models (folder and
single-file sources, each a few MB on disk) and 200 LoRA files in the LoRA folder, quoting a txt2img request
that names one LoRA. Prints the median and p95 of the quote as the app builds it (model facts and the LoRA
index kept in memory) and, side by side in the same run, as it was before (every quote hashing-by-stat each
model and listing and stat-ing the LoRA folder), then `ratio: X.XX` (before / now). Goal: well under 5 ms.

    python bench/quote.py [--quotes 500]

This is a benchmark, not a test.
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

MODELS, LORAS, MODEL_BYTES = 20, 200, 4 << 20


def make_files(work: pathlib.Path) -> tuple:
    """20 catalogue entries (half folders of 3 files, half single files) and 200 small safetensors LoRAs."""
    import numpy as np
    from safetensors.numpy import save_file

    from configs import ModelEntry

    entries = []
    for k in range(MODELS):
        if k % 2:
            path = work / f"model-{k}.safetensors"
            save_file({"weight": np.full(MODEL_BYTES // 4, k, dtype=np.float32)}, path)
            entries.append(ModelEntry(id=f"model-{k}", family="sd15", source=f"file:{path}", config=str(work)))
        else:
            folder = work / f"model-{k}"
            for part in ("unet", "vae", "text_encoder"):
                (folder / part).mkdir(parents=True)
                save_file({"weight": np.full(MODEL_BYTES // 12, k, dtype=np.float32)},
                          folder / part / "weights.safetensors")
            entries.append(ModelEntry(id=f"model-{k}", family="sd15", source=f"folder:{folder}"))
    loras = work / "loras"
    loras.mkdir()
    for k in range(LORAS):
        save_file({"lora_unet_down.lora_down.weight": np.full((4, 8), k, dtype=np.float32)},
                  loras / f"lora-{k:03}.safetensors")
    return tuple(entries), loras


def timings(compiler, spec, quotes: int) -> list[float]:
    compiler.compile(spec)                                  # the first quote works out what is kept
    times = []
    for _ in range(quotes):
        started = time.perf_counter()
        compiler.compile(spec)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quotes", type=int, default=500)
    args = parser.parse_args()

    from configs import CreditPrices, Limits, Style
    from pipelines.compiler import Compiler
    from pipelines.loras import ExtrasIndex, extras_finder
    from pipelines.model_facts import ModelInspector
    from pipelines.model_hashes import ModelHasher
    from pipelines.spec import Txt2Img, WorkflowSpec

    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        entries, loras = make_files(work)
        spec = WorkflowSpec.single(Txt2Img(prompt="a lighthouse <lora:lora-123:0.7>", model="model-7", seed=1))
        inspector = ModelInspector(ModelHasher(work))
        inspector.warm(entries)
        now = Compiler(entries, (Style("None"),), Limits(), CreditPrices(), inspector.hash,
                       extras=ExtrasIndex(loras, work / "embeddings"), model_facts=inspector)
        before = Compiler(entries, (Style("None"),), Limits(), CreditPrices(), ModelHasher(work),
                          extras=extras_finder(loras, work / "embeddings"))
        results = {"now": [], "before": []}
        for _ in range(5):                                   # alternating rounds, so both see the same machine
            results["now"] += timings(now, spec, args.quotes // 5)
            results["before"] += timings(before, spec, args.quotes // 5)
        for name, times in results.items():
            times.sort()
            print(f"{name:>6}: median {statistics.median(times):.3f} ms, p95 {times[int(len(times) * 0.95)]:.3f} ms "
                  f"({len(times)} quotes, {MODELS} models, {LORAS} LoRA files)")
        print(f"ratio: {statistics.median(results['before']) / statistics.median(results['now']):.2f}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
