"""Loads a diffusion transformer from a GGUF file (llama.cpp's container, as city96's ComfyUI-GGUF and
QuantStack publish FLUX.1, Qwen-Image, Z-Image and Wan in it) with diffusers' GGUF quantizer.

A GGUF file holds one transformer's weights, most of them block-quantized (Q8_0, Q4_K, ...), and no diffusers
config, so the rest of the model (its `config.json`) comes from a diffusers folder. diffusers keeps the quantized
weights packed as `GGUFParameter`s inside `GGUFLinear` layers and dequantizes them on the fly to `dtype` in each
forward, so the transformer stays about as small in memory as the file.

Files name their architecture in the header (`general.architecture`): city96's converter writes "flux" for
FLUX.1, "qwen_image" for Qwen-Image, "lumina2" for Z-Image (ComfyUI runs Z-Image as a Lumina 2 / NextDiT model)
and "wan" for Wan 2.1/2.2. `gguf_architecture` reads just that header, so a caller can refuse a file for the wrong
model before reading gigabytes; `load_gguf_transformer` refuses it too.

Key names: diffusers loads both the original checkpoint names that published GGUF files use (BFL names for FLUX.1,
Wan's and Z-Image's own names, converted by `from_single_file`'s per-class converter) and files whose names are
already exactly the diffusers state-dict keys (loaded as they are). Qwen-Image's published names are diffusers'.
"""

from __future__ import annotations

import os
import pathlib
from typing import TYPE_CHECKING

from pipelines.families import FAMILIES

if TYPE_CHECKING:           # reading a header needs no torch: the compiler checks files with it
    import torch

# family -> (diffusers transformer class name, architecture names a GGUF file of that family may declare), as
# each family declares them (`pipelines/families/`).
GGUF_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    f.name: (f.transformer_class, f.gguf_architectures) for f in FAMILIES if f.gguf_architectures}


def _family(family: str) -> tuple[str, tuple[str, ...]]:
    try:
        return GGUF_FAMILIES[family]
    except KeyError:
        raise ValueError(
            f"No GGUF transformer loader for family {family!r}; GGUF files are supported for: "
            f"{', '.join(GGUF_FAMILIES)}."
        ) from None


def gguf_architecture(path: str | os.PathLike) -> str:
    """Return the `general.architecture` string from a GGUF file's header, e.g. "flux" or "qwen_image".

    Uses gguf's `GGUFReader`, which memory-maps the file and parses only the header and the tensor table, so no
    tensor data is read.

    Raises:
        `ValueError`: the file is missing, is not a GGUF file, or its header names no architecture.
    """
    from gguf import GGUFReader

    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"GGUF file {path} does not exist.")
    try:
        reader = GGUFReader(path, "r")
    except Exception as e:  # gguf raises ValueError for a bad magic, others for truncated tables
        raise ValueError(f"{path.name} is not a readable GGUF file: {e}") from e
    field = reader.get_field("general.architecture")
    if field is None:
        raise ValueError(f"{path.name} is a GGUF file with no general.architecture in its header.")
    arch = field.contents()
    if not isinstance(arch, str) or not arch:
        raise ValueError(f"{path.name} has a malformed general.architecture field: {arch!r}.")
    return arch


def check_gguf_architecture(path: str | os.PathLike, family: str, model_id: str | None = None) -> str:
    """Raise unless the GGUF file at `path` declares an architecture of `family`; return that architecture.

    Args:
        path: the GGUF file.
        family (`str`): a key of `GGUF_FAMILIES` ("flux1", "qwen-image", "z-image", "wan22").
        model_id (`str`, *optional*): named in the error message, e.g. the catalogue entry being loaded.

    Raises:
        `ValueError`: unknown family, unreadable file, or a file of another architecture, e.g.
            "transformer.gguf holds a 'qwen_image' GGUF; model flux-dev is declared flux1, whose GGUF files are
            'flux'."
    """
    _, accepted = _family(family)
    arch = gguf_architecture(path)
    if arch not in accepted:
        who = f"model {model_id} is declared {family}" if model_id else f"family {family} was asked for"
        raise ValueError(
            f"{pathlib.Path(path).name} holds a {arch!r} GGUF; {who}, whose GGUF files are "
            f"{' or '.join(repr(a) for a in accepted)}."
        )
    return arch


def _config_location(config_folder: str | os.PathLike, subfolder: str) -> tuple[str, str | None]:
    """Where the transformer's config.json is: a pipeline folder's `subfolder`, or the folder itself."""
    folder = pathlib.Path(config_folder)
    if (folder / subfolder / "config.json").is_file():
        return str(folder), subfolder
    if (folder / "config.json").is_file():
        return str(folder), None
    raise ValueError(
        f"No transformer config in {folder}: expected {folder / subfolder / 'config.json'} (a diffusers pipeline "
        f"folder) or {folder / 'config.json'}."
    )


def load_gguf_transformer(
    family: str,
    path: str | os.PathLike,
    config_folder: str | os.PathLike,
    dtype: torch.dtype,
    *,
    subfolder: str = "transformer",
    model_id: str | None = None,
) -> torch.nn.Module:
    """Load the transformer of `family` from the GGUF file at `path`, keeping its quantized weights packed.

    Calls `<TransformerClass>.from_single_file(path, quantization_config=GGUFQuantizationConfig(compute_dtype=dtype),
    config=config_folder, subfolder=subfolder, local_files_only=True)` after checking the file's architecture.

    Args:
        family (`str`): "flux1" (`FluxTransformer2DModel`), "qwen-image" (`QwenImageTransformer2DModel`),
            "z-image" (`ZImageTransformer2DModel`) or "wan22" (`WanTransformer3DModel`).
        path: the `.gguf` file.
        config_folder: a diffusers pipeline folder whose `subfolder/config.json` describes this transformer, or
            a folder holding that `config.json` directly. Never fetched from the Hub.
        dtype (`torch.dtype`): compute dtype: quantized weights are dequantized to it in each forward, and the
            unquantized ones (norms, biases, F16/F32 tensors) are stored in it.
        subfolder (`str`, defaults to "transformer"): "transformer_2" for Wan 2.2 A14B's low-noise expert.
        model_id (`str`, *optional*): named in error messages.

    Returns:
        The transformer in eval mode. Its quantized linear layers are diffusers `GGUFLinear` modules whose
        `weight` is a `GGUFParameter` (`.quant_type` says which GGML type); `model.hf_quantizer` is set.

    Raises:
        `ValueError`: unknown family, missing or unreadable file, a GGUF of another architecture, no config in
            `config_folder`, or weights that do not fit the config (diffusers' own message is kept).
    """
    import diffusers
    from diffusers import GGUFQuantizationConfig

    class_name, _ = _family(family)
    check_gguf_architecture(path, family, model_id)
    config, config_subfolder = _config_location(config_folder, subfolder)
    cls = getattr(diffusers, class_name)
    try:
        return cls.from_single_file(
            str(path),
            quantization_config=GGUFQuantizationConfig(compute_dtype=dtype),
            config=config,
            subfolder=config_subfolder,
            torch_dtype=dtype,
            local_files_only=True,
        )
    except (KeyError, RuntimeError, ValueError) as e:
        # A converter missing an expected key raises KeyError; a shape mismatch raises ValueError.
        what = f"model {model_id}" if model_id else f"a {family} transformer"
        raise ValueError(
            f"{pathlib.Path(path).name} does not load as {what} ({class_name} with the config in {config_folder}): "
            f"{type(e).__name__}: {e}"
        ) from e
