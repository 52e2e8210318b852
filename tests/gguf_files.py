"""Writes small GGUF files from a transformer's state dict, as city96's ComfyUI-GGUF converter lays them out,
so the GGUF loading path can be tested without downloading a multi-gigabyte file.

`write_gguf` quantizes with the `gguf` package itself (`gguf.quants.quantize`, the same numpy reference code
llama.cpp's Python tools use). `original_keys` renames a diffusers state dict to the original checkpoint names
that published Wan and Z-Image GGUF files carry, so diffusers' single-file converters run on them as they would on
a real file.
"""

from __future__ import annotations

import os

import gguf
import numpy as np
import torch

# File-type numbers written to general.file_type, as llama.cpp's tools do (LlamaFileType).
_FILE_TYPES = {
    "F16": gguf.LlamaFileType.MOSTLY_F16,
    "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "Q5_0": gguf.LlamaFileType.MOSTLY_Q5_0,
    "Q5_1": gguf.LlamaFileType.MOSTLY_Q5_1,
    "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
    "Q4_1": gguf.LlamaFileType.MOSTLY_Q4_1,
}


def _should_quantize(name: str, array: np.ndarray, block: int) -> bool:
    """Only 2-D `.weight` tensors whose rows split into whole blocks: those are `nn.Linear` weights in the four
    transformers, which diffusers swaps for `GGUFLinear`. Anything else handed to diffusers as a quantized
    `GGUFParameter` would land packed in a module that cannot dequantize it (a conv, an embedding, a raw
    parameter)."""
    return name.endswith(".weight") and array.ndim == 2 and array.shape[1] % block == 0


def write_gguf(state_dict: dict[str, torch.Tensor], path: str | os.PathLike, arch: str, quant: str = "Q8_0") -> dict:
    """Write `state_dict` to a GGUF file at `path` that declares `general.architecture = arch`.

    2-D `.weight` tensors whose rows are a multiple of the block size (32) are quantized to `quant`; other
    tensors of 2 or more dimensions (convolutions, modulation tables, odd-sized linears) are stored F16, and 1-D
    ones (biases, norm scales) F32, as llama.cpp's and city96's converters do. Names are written as given.

    Args:
        state_dict: name -> tensor, e.g. `model.state_dict()` or `original_keys(...)` of it.
        path: the file to write.
        arch (`str`): e.g. "flux", "qwen_image", "lumina2" (Z-Image), "wan".
        quant (`str`, defaults to "Q8_0"): "Q8_0", "Q5_0", "Q5_1", "Q4_0", "Q4_1" or "F16" (no block
            quantization).

    Returns:
        `{name: GGML type name}` for every tensor written, e.g. `{"proj_out.weight": "Q8_0", ...}`.
    """
    if quant not in _FILE_TYPES:
        raise ValueError(f"Unsupported quant {quant!r}; choose one of {', '.join(_FILE_TYPES)}.")
    qtype = gguf.GGMLQuantizationType[quant]
    block, _ = gguf.GGML_QUANT_SIZES[qtype]
    writer = gguf.GGUFWriter(path=None, arch=arch)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_file_type(_FILE_TYPES[quant])
    written = {}
    for name, tensor in state_dict.items():
        array = tensor.detach().to(torch.float32).cpu().numpy()
        if quant != "F16" and _should_quantize(name, array, block):
            data = gguf.quants.quantize(array, qtype)
            # `data` is uint8 [rows, bytes per row]; given raw_dtype the writer derives the logical shape from it
            # (passing raw_shape as well would make it convert that shape a second time).
            writer.add_tensor(name, data, raw_dtype=qtype)
            written[name] = quant
        elif array.ndim >= 2:
            writer.add_tensor(name, array.astype(np.float16))
            written[name] = "F16"
        else:
            writer.add_tensor(name, array.astype(np.float32))
            written[name] = "F32"
    writer.write_header_to_file(path=path)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


# Diffusers -> original names for Wan 2.x: the inverse of `convert_wan_transformer_to_diffusers`'s renames that
# a text-to-video model uses. Order matters: longer, more specific patterns first.
_WAN_RENAMES = [
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("attn1", "self_attn"),
    ("attn2", "cross_attn"),
    (".to_out.0.", ".o."),
    (".to_q.", ".q."),
    (".to_k.", ".k."),
    (".to_v.", ".v."),
    ("ffn.net.0.proj", "ffn.0"),
    ("ffn.net.2", "ffn.2"),
    ("proj_out", "head.head"),
]


def _wan_original(key: str) -> str:
    if key == "scale_shift_table":
        return "head.modulation"
    for new, old in _WAN_RENAMES:
        key = key.replace(new, old)
    if key.endswith("scale_shift_table"):  # per-block modulation
        key = key[: -len("scale_shift_table")] + "modulation"
    # diffusers' norm2 is Wan's norm3 and the other way round (the converter swaps them).
    return key.replace(".norm2.", ".norm__tmp.").replace(".norm3.", ".norm2.").replace(".norm__tmp.", ".norm3.")


def _z_image_original(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        if ".attention.to_k.weight" in key or ".attention.to_v.weight" in key:
            continue  # folded into qkv below
        if ".attention.to_q.weight" in key:
            stem = key.replace(".attention.to_q.weight", ".attention.")
            out[stem + "qkv.weight"] = torch.cat(
                [value, state_dict[stem + "to_k.weight"], state_dict[stem + "to_v.weight"]], dim=0)
            continue
        key = (key.replace("all_final_layer.2-1.", "final_layer.").replace("all_x_embedder.2-1.", "x_embedder.")
               .replace(".attention.to_out.0.", ".attention.out.").replace(".attention.norm_k.", ".attention.k_norm.")
               .replace(".attention.norm_q.", ".attention.q_norm."))
        out[key] = value
    return out


def original_keys(family: str, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a diffusers transformer state dict to the original checkpoint names published GGUF files use.

    "wan22": Wan's names (`blocks.0.self_attn.q.weight`, `head.modulation`, ...). "z-image": Z-Image's names with
    q, k and v fused into `attention.qkv.weight`. Only these two: FLUX.1's BFL layout cannot be loaded for a tiny
    model (diffusers' converter hard-codes FLUX's 3072 width), and Qwen-Image's published names are diffusers'.
    """
    if family == "wan22":
        return {_wan_original(k): v for k, v in state_dict.items()}
    if family == "z-image":
        return _z_image_original(state_dict)
    raise ValueError(f"No original key layout for {family!r}; write the diffusers keys as they are.")
