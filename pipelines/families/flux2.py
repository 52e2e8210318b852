"""FLUX.2 [klein]: a 4B flow transformer reading Qwen3's hidden states, distilled guidance; text to image, and
editing with reference images. ([dev] is `flux2_dev`.)"""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

FLUX2 = Family(
    name="flux2", label="FLUX.2", media="image", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"txt2img": "Flux2KleinPipeline", "edit": "Flux2KleinPipeline"},     # edits with reference images
    defaults=Defaults(width=1024, height=1024, steps=4, cfg_scale=1.0, sampler="euler", schedule="normal"),
    guidance="distilled", negative_prompt=False, size_multiple=16, prompt_tokens=512,
    uses_max_sequence_length=True, sources=("demo", "folder", "hub"),
    demos={"demo-flux2-klein": "pipelines.demos.flux2:build_flux2_klein"},
    price_factor=4.0,
    latent_rgb=(latent_rgb.FLUX2,),
)
