"""FLUX.1 Fill: FLUX.1's transformer trained to inpaint and outpaint, reading the masked image and the mask
beside the latents (384 input channels); a checkpoint of its own, so a family of its own."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

FLUX1_FILL = Family(
    name="flux1-fill", label="FLUX.1 Fill", media="image", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"inpaint": "FluxFillPipeline"},
    defaults=Defaults(width=1024, height=1024, steps=50, cfg_scale=30.0, sampler="euler", schedule="normal"),
    guidance="distilled", negative_prompt=False, size_multiple=16, prompt_tokens=512,
    uses_max_sequence_length=True, sources=("demo", "folder", "file", "hub", "gguf"),
    transformer_class="FluxTransformer2DModel", gguf_architectures=("flux",),
    demos={"demo-flux1-fill": "pipelines.demos.flux1:build_flux1_fill"},
    price_factor=4.0,
    latent_rgb=(latent_rgb.FLUX1,),
)
