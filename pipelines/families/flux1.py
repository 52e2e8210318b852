"""FLUX.1 (dev, schnell): a 12B rectified-flow transformer with CLIP and T5 text, distilled guidance."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

FLUX1 = Family(
    name="flux1", label="FLUX.1", media="image", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"txt2img": "FluxPipeline", "img2img": "FluxImg2ImgPipeline", "inpaint": "FluxInpaintPipeline",
           "edit": "FluxKontextPipeline"},
    defaults=Defaults(width=1024, height=1024, steps=28, cfg_scale=3.5, sampler="euler", schedule="normal"),
    guidance="distilled", negative_prompt=False, size_multiple=16, prompt_tokens=512,
    uses_max_sequence_length=True, sources=("demo", "folder", "file", "hub", "gguf"),
    transformer_class="FluxTransformer2DModel", gguf_architectures=("flux",),
    demos={"demo-flux1": "pipelines.demos.flux1:build_flux1"},
    control_tasks={"txt2img": "FluxControlNetPipeline", "img2img": "FluxControlNetImg2ImgPipeline"},
    controlnet_class="FluxControlNetModel",
    control_demos={"demo-controlnet-flux": "pipelines.demos.flux1:build_flux1_controlnet"},
    price_factor=4.0,
    latent_rgb=(latent_rgb.FLUX1,),
)
