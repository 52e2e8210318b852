"""Writes a diffusers SD1.5-family pipeline as one original-layout (LDM / A1111 / ComfyUI)
.safetensors checkpoint, so the tests can load a "single file" model offline.

diffusers ships only the other direction (original -> diffusers); this mapping is driven by the
UNet and VAE configs, so it fits the tiny demo models as well as SD1.5's own layout.
"""
from __future__ import annotations

import safetensors.torch

RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
          ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
            "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}


def _unet_prefixes(config) -> dict[str, str]:
    levels, layers, prefixes = len(config["block_out_channels"]), config["layers_per_block"], {}
    for i in range(levels):
        for j in range(layers):
            prefixes[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{(layers + 1) * i + j + 1}.0."
            prefixes[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{(layers + 1) * i + j + 1}.1."
        if i < levels - 1:
            prefixes[f"down_blocks.{i}.downsamplers.0.conv."] = f"input_blocks.{(layers + 1) * (i + 1)}.0.op."
        for j in range(layers + 1):
            prefixes[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{(layers + 1) * i + j}.0."
            prefixes[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{(layers + 1) * i + j}.1."
        if i < levels - 1:
            slot = 2 if "CrossAttn" in config["up_block_types"][i] else 1
            prefixes[f"up_blocks.{i}.upsamplers.0."] = f"output_blocks.{(layers + 1) * i + layers}.{slot}."
    prefixes.update({"mid_block.resnets.0.": "middle_block.0.", "mid_block.attentions.0.": "middle_block.1.",
                     "mid_block.resnets.1.": "middle_block.2."})
    return prefixes


def _unet(state, config) -> dict:
    prefixes, out = _unet_prefixes(config), {}
    for key, value in state.items():
        new = next((ldm + key[len(hf):] for hf, ldm in UNET_TOP.items() if key.startswith(hf + ".")), None)
        if new is None:
            hf, ldm = next((hf, ldm) for hf, ldm in prefixes.items() if key.startswith(hf))
            rest = key[len(hf):]
            if "resnets" in hf:
                for a, b in RESNET:
                    if rest.startswith(a + "."):
                        rest = b + rest[len(a):]
            new = ldm + rest
        out["model.diffusion_model." + new] = value
    return out


def _vae(state, config) -> dict:
    levels, out = len(config["block_out_channels"]), {}
    for key, value in state.items():
        new = key
        for i in range(levels):
            new = (new.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
                   .replace(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
                   .replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{levels - 1 - i}.block.")
                   .replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{levels - 1 - i}.upsample."))
        new = new.replace("mid_block.resnets.0.", "mid.block_1.").replace("mid_block.resnets.1.", "mid.block_2.")
        if "mid_block.attentions.0." in new:
            new = new.replace("mid_block.attentions.0.", "mid.attn_1.")
            for a, b in (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                         ("to_out.0.", "proj_out.")):
                new = new.replace(a, b)
            if value.ndim == 2:          # attention projections are 1x1 convolutions in the original
                value = value[:, :, None, None]
        new = new.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        out["first_stage_model." + new] = value
    return out


def _text_encoder(state) -> dict:
    # transformers >= 5.6 drops the "text_model." prefix that original checkpoints carry.
    return {"cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k): v
            for k, v in state.items()}


def save_single_file(pipe, path) -> None:
    state = {**_unet(pipe.unet.state_dict(), pipe.unet.config), **_vae(pipe.vae.state_dict(), pipe.vae.config),
             **_text_encoder(pipe.text_encoder.state_dict())}
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))
