"""LoRA and textual-inversion files: finding them, their A1111 hashes, and applying them to a pipeline
for one job and removing them after.

Only `.safetensors` files are read. `.pt`/`.ckpt`/`.bin` files are pickles that can run code when
opened, so they are never listed or loaded; convert them to safetensors first. A `.safetensors` file
is listed only if its header is sound (`safetensors_metadata`): a truncated or garbage file is skipped
with a warning naming it, so prompts cannot ask for it and no job fails on it in the worker.

Applying changes the shared pipeline in place: the caller must run one job at a time on it (the
runner does), and the pipeline must carry no LoRA or added token of its own, because leaving the
context unloads all of them.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import pathlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pipelines.errors import AtelierError, BadModelFile
from pipelines.model_hashes import file_sha256

logger = logging.getLogger(__name__)

KINDS = ("lora", "embedding")
_CHUNK = 1 << 20
_HEX12 = re.compile(r"[0-9a-fA-F]{12}")


@functools.lru_cache(maxsize=1024)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The `__metadata__` of a `.safetensors` file, after the safetensors library has checked its header
    without reading a tensor: the JSON, each tensor's dtype, shape and byte span, and that the spans
    fill the rest of the file exactly, so a truncated or garbage file is refused by its header and size.

    Raises:
        BadModelFile: the file cannot be a safetensors file; the message names it and says what is wrong.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(os.fspath(path), framework="numpy") as f:     # numpy: no torch needed to list files
            return f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise BadModelFile(f"{pathlib.Path(path).name} is not a safetensors file: {_first_line(e)}.") from None


def lora_shorthash(path: str | os.PathLike) -> str:
    """AUTOMATIC1111's short hash of a LoRA file, as written in `Lora hashes: "name: shorthash"`.

    A1111 (`extensions-builtin/Lora/network.py`, `NetworkOnDisk.__init__`/`set_hash`/`read_hash`, and
    `modules/hashes.py`) takes the first 12 hex digits of:
    - the `sshs_model_hash` metadata entry, when a `.safetensors` file has one (kohya sd-scripts writes it);
    - else, for `.safetensors`, the "addnet" hash: sha256 of the bytes after the header (8-byte length
      plus JSON), i.e. of the tensor data only, so editing the metadata does not change it;
    - else (other files) the sha256 of the whole file.

    Args:
        path (`str` or `os.PathLike`): the LoRA file.

    Returns:
        12 lower-case hex digits.

    Raises:
        BadModelFile: a `.safetensors` file whose header is unsound (see `safetensors_metadata`).
    """
    path = pathlib.Path(path)
    if path.suffix.lower() != ".safetensors":
        return file_sha256(path)[:12]
    recorded = safetensors_metadata(path).get("sshs_model_hash", "")
    if _HEX12.match(recorded):
        return recorded[:12].lower()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(8 + int.from_bytes(f.read(8), "little"))      # past the header, to the first tensor byte
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class ExtraFile:
    """A LoRA or embedding file found by `scan_folder`."""

    name: str        # file stem, the name used in the prompt
    path: str
    kind: str        # "lora" or "embedding"
    sha256: str      # of the whole file; A1111's `TI hashes` shorthash is its first 12 digits
    shorthash: str = ""   # what A1111 writes in `Lora hashes` / `TI hashes`
    denoiser: str = ""    # a LoRA's: "unet" (SD1.5, SDXL) or "transformer" (FLUX, SD3.5, ...), from its tensor
                          # names; "" when they do not say


def scan_folder(folder: str | os.PathLike, kind: str) -> dict[str, ExtraFile]:
    """The `*.safetensors` files directly in `folder`, by file stem (the name a prompt uses).

    Args:
        folder (`str` or `os.PathLike`): the folder; a missing one gives `{}`. Subfolders and hidden
            files are not searched.
        kind (`str`): `"lora"` or `"embedding"`, recorded on each `ExtraFile`.

    Returns:
        `{stem: ExtraFile}`. Files of any other type (notably `.pt`, `.ckpt`, `.bin` pickles) are
        ignored without being opened. A `.safetensors` file whose header is unsound (truncated, garbage:
        `safetensors_metadata`) is left out, with one warning per version of the file naming it and what
        is wrong; a prompt that names it then gets the compiler's "not found". Checks and hashes are
        kept per (path, size, mtime), so rescanning is cheap.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return {}
    found: dict[str, ExtraFile] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.suffix.lower() != ".safetensors" or not p.is_file():
            continue
        if p.stem in found:
            logger.warning("%s: ignored, %s has the same name", p, found[p.stem].path)
            continue
        try:
            st = p.stat()
            version = (str(p), st.st_size, st.st_mtime_ns)
            if _cached_problem(*version):
                continue
            sha256 = _cached_sha256(*version)
            short = _cached_shorthash(*version) if kind == "lora" else sha256[:12]
        except OSError as e:         # removed or unreadable since the folder was listed
            logger.warning("%s: skipped, it could not be read (%s)", p, e)
            continue
        found[p.stem] = ExtraFile(p.stem, str(p), kind, sha256, short,
                                  _cached_denoiser(*version) if kind == "lora" else "")
    return found


@functools.lru_cache(maxsize=1024)
def _cached_problem(path: str, size: int, mtime_ns: int) -> str:
    """What is wrong with this version of a `.safetensors` file ("" if nothing); warned about once."""
    try:
        safetensors_metadata(path)
    except BadModelFile as e:
        logger.warning("%s: skipped, not listed: %s Download it again or remove it.", path, e.message)
        return e.message
    return ""


@functools.lru_cache(maxsize=1024)
def _cached_denoiser(path: str, size: int, mtime_ns: int) -> str:
    return lora_denoiser(path)


def lora_denoiser(path: str | os.PathLike) -> str:
    """What a LoRA file adapts, from its tensor names alone (the header; no tensor is read): "unet" for SD1.5 and
    SDXL's UNet (diffusers' `unet.down_blocks...`, kohya's `lora_unet_down_blocks_...` / `input_blocks`),
    "transformer" for the transformers of FLUX, SD3.5 and the like (`transformer...`, kohya's
    `lora_unet_double_blocks_...`, `diffusion_model...`), "" when the names say neither. A UNet's attention
    layers are also called `transformer_blocks`, so the UNet's own names are looked for first."""
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="numpy") as f:
        keys = list(f.keys())
    if any(marker in key for key in keys for marker in ("down_blocks", "up_blocks", "input_blocks", "output_blocks")):
        return "unet"
    if any(key.startswith(("transformer.", "transformer_", "lora_transformer", "diffusion_model.",
                           "lora_unet_double_blocks", "lora_unet_single_blocks")) for key in keys):
        return "transformer"
    return ""


@functools.lru_cache(maxsize=1024)
def _cached_shorthash(path: str, size: int, mtime_ns: int) -> str:
    return lora_shorthash(path)


def extras_finder(loras_dir: str | os.PathLike, embeddings_dir: str | os.PathLike):
    """A callable kind -> {name: ExtraFile}: "lora" lists `loras_dir`, "embedding" `embeddings_dir`."""
    folders = {"lora": loras_dir, "embedding": embeddings_dir}
    return lambda kind: scan_folder(folders[kind], kind)


def extra_file(extras: Callable[[str], dict[str, ExtraFile]], kind: str, name: str, sha256: str) -> str:
    """The path of LoRA or embedding `name` among `extras(kind)`, if it still holds the bytes a plan was made
    with; raises AtelierError saying what happened to it otherwise."""
    found = extras(kind).get(name)
    if found is None:
        raise AtelierError(f"The {kind} {name!r} this job uses is no longer there; put it back or compile "
                           "the job again.", code="extra_missing")
    if found.sha256 != sha256:
        raise AtelierError(f"The {kind} file {name!r} changed since this job was made (its hash differs); "
                           "the job would not make the same picture.", code="extra_changed")
    return found.path


class ExtrasIndex:
    """Callable: kind ("lora" or "embedding") -> {name: ExtraFile}, like `extras_finder`, for quoting: a folder is
    scanned again only when its listing changes (its mtime: a file added, removed or renamed), so a quote costs
    one stat per folder instead of one per file. A file rewritten in place keeps its old entry until the listing
    changes; the worker, which scans before every job, refuses it by name."""

    def __init__(self, loras_dir: str | os.PathLike, embeddings_dir: str | os.PathLike):
        self.folders = {"lora": loras_dir, "embedding": embeddings_dir}
        self._scans: dict[str, tuple[int | None, dict[str, ExtraFile]]] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str) -> dict[str, ExtraFile]:
        folder = self.folders[kind]
        try:
            listing = os.stat(folder).st_mtime_ns
        except OSError:
            listing = None
        with self._lock:
            scanned = self._scans.get(kind)
        if scanned is not None and scanned[0] == listing:
            return scanned[1]
        found = scan_folder(folder, kind)
        with self._lock:
            self._scans[kind] = (listing, found)
        return found


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200].rstrip(".")


def _remedy(path: str | os.PathLike) -> str:
    return f"Download it again or remove it from the {pathlib.Path(path).parent.name} folder, then run the job again."


def _read(path: str | os.PathLike, what: str) -> dict:
    """The tensors of a LoRA or embedding file. The folder scan listed it sound, but it may have been
    replaced or cut short since: raises BadModelFile naming the file and what to do, never the
    library's bare error."""
    name = pathlib.Path(path).name
    if pathlib.Path(path).suffix.lower() != ".safetensors":
        raise BadModelFile(f"{name}: only .safetensors {what} files are loaded (pickled .pt/.ckpt are not); "
                           "convert it to safetensors.")
    from safetensors.torch import load_file      # torch only where files are applied, not where they are listed

    try:
        safetensors_metadata(path)
        return load_file(os.fspath(path))
    except BadModelFile as e:
        raise BadModelFile(f"{e.message} {_remedy(path)}") from None
    except Exception as e:  # safetensors raises its own error type for what the header check lets through
        raise BadModelFile(f"{name} could not be read as a safetensors file ({_first_line(e)}). {_remedy(path)}") from e


@contextlib.contextmanager
def applied_loras(pipe, loras: list[tuple[str, float]]):
    """Apply LoRA files to `pipe` for the body of the `with`, then remove them.

    Args:
        pipe: a diffusers pipeline with `load_lora_weights` (SD1.5, SDXL).
        loras (`list[tuple[str, float]]`): `(path, weight)` pairs, kohya or diffusers format. Weight 0
            gives exactly the base output; negative weights are allowed, as in A1111.

    Yields:
        `pipe`, with each file loaded as its own adapter and the adapters mixed at their weights.

    Raises:
        BadModelFile: a file is not a readable `.safetensors` LoRA that fits this pipeline; the message
            names it and says what to do. An AtelierError, so a job fails with that message.

    On leaving, even by an exception, `pipe.unload_lora_weights()` removes every adapter; the
    pipeline then gives the same bytes as before. An empty list does nothing.
    """
    if not loras:
        yield pipe
        return
    names = [f"atelier_lora_{i}" for i in range(len(loras))]
    try:
        for name, (path, _) in zip(names, loras):
            state = _read(path, "LoRA")
            try:
                pipe.load_lora_weights(state, adapter_name=name)
            except Exception as e:
                raise BadModelFile(f"{pathlib.Path(path).name} is not a LoRA this model can load: {_first_line(e)}. "
                                   "Use a LoRA made for this model's family.") from e
        pipe.set_adapters(names, adapter_weights=[float(w) for _, w in loras])
        logger.debug("applied LoRAs %s", [(os.fspath(p), w) for p, w in loras])
        yield pipe
    finally:
        pipe.unload_lora_weights()


@contextlib.contextmanager
def applied_embeddings(pipe, embeddings: list[tuple[str, str]]):
    """Add textual-inversion embeddings to `pipe` for the body of the `with`, then remove them.

    Args:
        pipe: a diffusers pipeline with `load_textual_inversion` and a single tokenizer (SD1.5).
        embeddings (`list[tuple[str, str]]`): `(path, token)` pairs; A1111 (`emb_params`) or diffusers
            (one `{token: vector}`) safetensors files. The token is the word the prompt uses (A1111 uses
            the file stem); an embedding of n vectors adds `token`, `token_1`, ... `token_{n-1}`.

    Yields `pipe`. Raises BadModelFile (an AtelierError and a ValueError), naming the file, for a file
    that is not a readable, loadable embedding for this text encoder or a token that is already a word
    of the tokenizer.

    On leaving, even by an exception, `pipe.unload_textual_inversion()` removes every added token.
    """
    if not embeddings:
        yield pipe
        return
    try:
        for path, token in embeddings:
            state = _read(path, "embedding")
            if "emb_params" not in state and len(state) != 1:   # A1111 or diffusers layout
                raise BadModelFile(f"{pathlib.Path(path).name} is not a textual-inversion embedding: expected an "
                                   f"'emb_params' tensor or a single {{token: vector}}, found {len(state)} tensors.")
            try:
                pipe.load_textual_inversion(state, token=token)
            except Exception as e:
                raise BadModelFile(f"{pathlib.Path(path).name} is not an embedding this model can load: "
                                   f"{_first_line(e)}.") from e
        yield pipe
    finally:
        pipe.unload_textual_inversion()
