"""What the compiler knows of each catalogue model before a job runs, read from its files without loading them.

`ModelFacts` holds a model's content hash, whether it is an inpainting model (a 9-channel UNet, which only the
inpaint and outpaint nodes can run), which family a single-file checkpoint holds, and why the model cache could
not load it. So these requests are refused when they are quoted, before a job row or a credit reservation
exists, instead of failing in the worker. `ModelInspector` works them out once per model and keeps them,
looking at the files again at most every `recheck_seconds` (the hashes themselves are kept per path, size and
mtime by `ModelHasher`), so quoting touches no disk in the common case. Pure: safetensors headers are read
with numpy, no torch.
"""
from __future__ import annotations

import json
import os
import pathlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from configs import ModelEntry
from pipelines.errors import AtelierError
from pipelines.families import FAMILIES
from pipelines.gguf import check_gguf_architecture
from pipelines.model_hashes import ModelHasher

# Which demo models are inpainting models (a test checks this against what the builders make).
DEMO_INPAINTING = frozenset({"demo-sd15-inpaint"})
DEMO_UPSCALERS = ("demo-upscaler-x4", "demo-latent-upscaler-x2")
# The first convolution of an original-layout (LDM / A1111) UNet: its second dimension is the input channels.
_LDM_CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"


@dataclass(frozen=True)
class ModelFacts:
    """hash: the content hash of the weights; inpainting: a 9-channel UNet; holds: the family a single file's
    tensors belong to ("" when not read); problem and code: why the model cache cannot load it ("" if it can)."""

    hash: str = ""
    inpainting: bool = False
    holds: str = ""
    problem: str = ""
    code: str = ""


def checkpoint_family(path: str | os.PathLike) -> str:
    """The family an original-layout (LDM / A1111) .safetensors checkpoint holds, from its tensor names
    alone (nothing is loaded): "sdxl", "sd15", "sd2", or "unknown"."""
    return _read_checkpoint(path)[0]


def _read_checkpoint(path: str | os.PathLike) -> tuple[str, int | None]:
    """From one read of a single-file checkpoint's header: the family its tensor names say
    (`checkpoint_family`), and its UNet's input channels (None when the file has no LDM UNet)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        keys = f.keys()
        in_channels = f.get_slice(_LDM_CONV_IN).get_shape()[1] if _LDM_CONV_IN in keys else None
    prefixes = {".".join(key.split(".")[:3]) for key in keys}
    if any(p.startswith("conditioner.embedders.1") for p in prefixes):
        return "sdxl", in_channels
    if any(p.startswith("cond_stage_model.transformer") for p in prefixes):
        return "sd15", in_channels
    if any(p.startswith("cond_stage_model.model") for p in prefixes):
        return "sd2", in_channels
    return "unknown", in_channels


def _folder_in_channels(folder: pathlib.Path) -> int | None:
    config = folder / "unet" / "config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("in_channels")


class ModelInspector:
    """Callable: `inspector(entry) -> ModelFacts`, kept per catalogue entry.

    Args:
        hasher: hashes the weights (and resolves relative paths under its models folder).
        recheck_seconds: how long facts are used before the files are looked at again.
        clock: seconds, for the recheck (tests pass their own).
    """

    def __init__(self, hasher: ModelHasher, recheck_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.hasher = hasher
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self._known: dict[ModelEntry, tuple[float, ModelFacts]] = {}
        self._lock = threading.Lock()

    def __call__(self, entry: ModelEntry) -> ModelFacts:
        with self._lock:
            known = self._known.get(entry)
        if known is not None and self.clock() - known[0] < self.recheck_seconds:
            return known[1]
        facts = self._inspect(entry)
        with self._lock:
            self._known[entry] = (self.clock(), facts)
        return facts

    def hash(self, entry: ModelEntry) -> str:
        """The content hash of `entry`'s weights ("" when they cannot be found)."""
        return self(entry).hash

    def warm(self, entries: Iterable[ModelEntry]) -> None:
        """Work out the facts of every entry now (at start-up, so the first request finds them)."""
        for entry in entries:
            self(entry)

    def _inspect(self, entry: ModelEntry) -> ModelFacts:
        try:
            digest = self.hasher(entry)
        except AtelierError as e:
            return ModelFacts(problem=e.message, code=e.code)
        kind = entry.source_kind
        problem = _source_problem(entry)
        if problem:
            return ModelFacts(hash=digest, problem=problem[0], code=problem[1])
        if kind == "gguf":
            try:
                check_gguf_architecture(self.hasher.location(entry), entry.family, entry.id)
            except ValueError as e:
                return ModelFacts(hash=digest, problem=f"Model {entry.id!r}: {e}", code="gguf_mismatch")
        if entry.family not in FAMILIES.generators("image"):
            return ModelFacts(hash=digest)
        if kind == "demo":
            return ModelFacts(hash=digest, inpainting=entry.id in DEMO_INPAINTING)
        path = self.hasher.location(entry)
        try:
            if kind == "folder":
                return ModelFacts(hash=digest, inpainting=_folder_in_channels(path) == 9)
            if kind == "file":
                return self._single_file(entry, path, digest)
        except (OSError, ValueError) as e:       # unreadable header or config: the loader will say more
            return ModelFacts(hash=digest, problem=f"Model {entry.id!r}: {path.name} could not be read ({e}).",
                              code="model_load_failed")
        return ModelFacts(hash=digest)

    def _single_file(self, entry: ModelEntry, path: pathlib.Path, digest: str) -> ModelFacts:
        holds, in_channels = _read_checkpoint(path)
        inpainting = in_channels == 9
        if holds in ("sd15", "sdxl", "sd2") and holds != entry.family:
            return ModelFacts(hash=digest, inpainting=inpainting, holds=holds, code="family_mismatch",
                              problem=f"Model {entry.id!r} is declared family = {entry.family!r} in "
                                      f"configs/models.toml, but its file {path.name} holds an {holds} checkpoint. "
                                      "Give it the family of its file (and a config folder of that family).")
        return ModelFacts(hash=digest, inpainting=inpainting, holds=holds)


def _source_problem(entry: ModelEntry) -> tuple[str, str] | None:
    """(message, code) when the model cache has no way to load `entry`'s source, as it would say it."""
    kind = entry.source_kind
    family = FAMILIES.get(entry.family)
    if family is not None:
        if kind == "demo" and entry.id not in family.demos:
            return (f"No demo model {entry.id!r}; the {family.label} demo models are {list(family.demos)}. Give it "
                    "a folder: or file: source in configs/models.toml.", "model_source")
        if kind == "file" and not entry.config:
            return (f"Model {entry.id!r} is a single file; give it `config = <diffusers folder>` in "
                    "configs/models.toml so it loads offline.", "model_config_missing")
        return None
    if kind not in ("demo", "folder"):
        what = {"controlnet": "ControlNet", "upscaler": "Upscaler"}.get(entry.family, "Model")
        return (f"{what} {entry.id!r}: {entry.family} models load from demo or folder: sources only; download it "
                "into a folder and give source = \"folder:PATH\".", f"{entry.family}_source")
    if entry.family == "upscaler" and kind == "demo" and entry.id not in DEMO_UPSCALERS:
        return (f"No demo upscaler {entry.id!r}; demo upscalers are {list(DEMO_UPSCALERS)}.", "upscaler_source")
    return None
