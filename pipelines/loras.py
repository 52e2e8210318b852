"""LoRA and textual-inversion files: finding them, their A1111 hashes, and applying them to a pipeline
for one job and removing them after.

Only `.safetensors` files are read. `.pt`/`.ckpt`/`.bin` files are pickles that can run code when
opened, so they are never listed or loaded; convert them to safetensors first. A `.safetensors` file
is listed only if its header is sound (`safetensors_header`): a truncated or garbage file is skipped
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
import math
import os
import pathlib
import re
from dataclasses import dataclass

from pipelines import json_guard
from pipelines.errors import BadModelFile, InvalidRequest
from pipelines.model_hashes import file_sha256

logger = logging.getLogger(__name__)

KINDS = ("lora", "embedding")
_CHUNK = 1 << 20
_HEX12 = re.compile(r"[0-9a-fA-F]{12}")


@functools.lru_cache(maxsize=1024)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


MAX_HEADER_BYTES = 100_000_000     # the safetensors library refuses longer headers
# Bits per element of each safetensors dtype (safetensors 0.8 knows these 22).
DTYPE_BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
              "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
              "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64}


def safetensors_header(path: str | os.PathLike) -> tuple[dict, int]:
    """Read and check the header of a `.safetensors` file without reading its tensors.

    The format (https://github.com/huggingface/safetensors#format) is an 8-byte little-endian length
    n, n bytes of JSON (`{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
    {str: str}}`), then the tensors' bytes. Checked here as the library checks it when it opens the
    file: the JSON is an object of such entries, each tensor's byte span matches its dtype and shape,
    and the spans tile the rest of the file exactly, so a truncated file is caught by its size alone.

    Args:
        path (`str` or `os.PathLike`): the file.

    Returns:
        `(header, data_start)`: the parsed JSON, and the offset of the first tensor byte (8 + n).

    Raises:
        BadModelFile: the file cannot be a safetensors file; the message names it and says what is wrong.
    """
    path = pathlib.Path(path)
    size = path.stat().st_size

    def broken(what: str) -> BadModelFile:
        return BadModelFile(f"{path.name} is not a safetensors file: {what}.")

    with open(path, "rb") as f:
        if size < 8:
            raise broken(f"it is {size} bytes long, too short for a header")
        n = int.from_bytes(f.read(8), "little")
        if n > MAX_HEADER_BYTES:
            raise broken(f"its header length reads {n:,} bytes, more than the {MAX_HEADER_BYTES:,} safetensors "
                         "allows (the file is garbage, or of another kind)")
        if n > size - 8:
            raise broken(f"its header claims {n:,} bytes but the file has {size - 8:,} after the length "
                         "(it is truncated, or not a safetensors file)")
        raw = f.read(n)
    try:             # a header nests 3 deep: {name: {"shape": [...]}}
        header = json_guard.loads(raw, what="its header", field="header", max_bytes=MAX_HEADER_BYTES, max_depth=4)
    except InvalidRequest as e:
        raise broken(e.message.rstrip(".")) from None
    if not isinstance(header, dict):
        raise broken("its header is not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise broken("its __metadata__ is not a map of text to text")
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise broken(f"the entry of tensor {name!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_BITS:
            raise broken(f"tensor {name!r} has dtype {dtype!r}, which safetensors does not define")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise broken(f"tensor {name!r} has shape {shape!r}, not a list of sizes")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise broken(f"tensor {name!r} has data_offsets {offsets!r}, not [begin, end]")
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits % 8 or offsets[1] - offsets[0] != bits // 8:
            needs = f"{bits // 8:,} bytes" if bits % 8 == 0 else f"{bits:,} bits, not whole bytes,"
            raise broken(f"tensor {name!r} ({dtype} {shape}) takes {needs} but its data_offsets give "
                         f"{offsets[1] - offsets[0]:,} bytes")
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise broken(f"tensor {name!r} starts at byte {begin:,} of the data, not at {end:,} where the one "
                         "before it ends")
        end = stop
    if end != size - 8 - n:
        raise broken(f"its tensors take {end:,} bytes but the file holds {size - 8 - n:,} after the header"
                     + (" (it is truncated)" if end > size - 8 - n else ""))
    return header, 8 + n


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
        BadModelFile: a `.safetensors` file whose header is unsound (see `safetensors_header`).
    """
    path = pathlib.Path(path)
    if path.suffix.lower() != ".safetensors":
        return file_sha256(path)[:12]
    header, data_start = safetensors_header(path)
    recorded = header.get("__metadata__", {}).get("sshs_model_hash", "")
    if _HEX12.match(recorded):
        return recorded[:12].lower()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(data_start)
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


def scan_folder(folder: str | os.PathLike, kind: str) -> dict[str, ExtraFile]:
    """The `*.safetensors` files directly in `folder`, by file stem (the name a prompt uses).

    Args:
        folder (`str` or `os.PathLike`): the folder; a missing one gives `{}`. Subfolders and hidden
            files are not searched.
        kind (`str`): `"lora"` or `"embedding"`, recorded on each `ExtraFile`.

    Returns:
        `{stem: ExtraFile}`. Files of any other type (notably `.pt`, `.ckpt`, `.bin` pickles) are
        ignored without being opened. A `.safetensors` file whose header is unsound (truncated, garbage:
        `safetensors_header`) is left out, with one warning per version of the file naming it and what
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
        found[p.stem] = ExtraFile(p.stem, str(p), kind, sha256, short)
    return found


@functools.lru_cache(maxsize=1024)
def _cached_problem(path: str, size: int, mtime_ns: int) -> str:
    """What is wrong with this version of a `.safetensors` file ("" if nothing); warned about once."""
    try:
        safetensors_header(path)
    except BadModelFile as e:
        logger.warning("%s: skipped, not listed: %s Download it again or remove it.", path, e.message)
        return e.message
    return ""


@functools.lru_cache(maxsize=1024)
def _cached_shorthash(path: str, size: int, mtime_ns: int) -> str:
    return lora_shorthash(path)


def extras_finder(loras_dir: str | os.PathLike, embeddings_dir: str | os.PathLike):
    """A callable kind -> {name: ExtraFile}: "lora" lists `loras_dir`, "embedding" `embeddings_dir`."""
    folders = {"lora": loras_dir, "embedding": embeddings_dir}
    return lambda kind: scan_folder(folders[kind], kind)


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
        safetensors_header(path)
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
