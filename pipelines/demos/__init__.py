"""Tiny, seeded, randomly initialised models of the newer families (FLUX, SD3.5, Qwen-Image, Z-Image, Wan,
LTX-2), built offline with their tokenizers, one module per family; `pipelines.families` names each builder."""
