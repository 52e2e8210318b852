"""Writes small LoRA and textual-inversion files for a tiny SD1.5 pipeline, for the tests."""
from __future__ import annotations

import copy

import torch
from diffusers import StableDiffusionPipeline
from peft import LoraConfig, get_peft_model_state_dict
from safetensors.torch import save_file

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def random_lora(module, targets, seed):
    """A peft state dict of a rank-4 LoRA with random A and B (peft's default B=0 is a no-op)."""
    module = copy.deepcopy(module)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=targets))
    return get_peft_model_state_dict(module)


def write_lora(pipe, folder, name: str, seed: int) -> None:
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=random_lora(pipe.unet, UNET_TARGETS, seed),
                                              weight_name=f"{name}.safetensors")


def write_embedding(pipe, folder, name: str, seed: int, vectors: int = 2) -> None:
    """An AUTOMATIC1111-style embedding ({"emb_params": [vectors, hidden]})."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        save_file({"emb_params": torch.randn(vectors, pipe.text_encoder.config.hidden_size)},
                  str(folder / f"{name}.safetensors"))
