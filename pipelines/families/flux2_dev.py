"""FLUX.2 [dev]: a 32B flow transformer reading Mistral Small 3.1's hidden states, distilled guidance; text to
image, and editing with reference images. (Its real checkpoint's PixtralProcessor needs torchvision.)"""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

FLUX2_DEV = Family(
    name="flux2-dev", label="FLUX.2 [dev]", media="image", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"txt2img": "Flux2Pipeline", "edit": "Flux2Pipeline"},
    defaults=Defaults(width=1024, height=1024, steps=50, cfg_scale=4.0, sampler="euler", schedule="normal"),
    guidance="distilled", negative_prompt=False, size_multiple=16, prompt_tokens=512,
    uses_max_sequence_length=True, sources=("demo", "folder", "hub"),
    demos={"demo-flux2-dev": "pipelines.demos.flux2:build_flux2"},
    price_factor=8.0,
    latent_rgb=(latent_rgb.FLUX2,),
)
