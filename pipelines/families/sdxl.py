"""Stable Diffusion XL: a larger UNet with two CLIP text encoders and size conditioning, epsilon steps."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

SDXL = Family(
    name="sdxl", label="Stable Diffusion XL", media="image", denoiser="unet", scheduling="discrete",
    textual_inversion=True,
    tasks={"txt2img": "StableDiffusionXLPipeline", "img2img": "StableDiffusionXLImg2ImgPipeline",
           "inpaint": "StableDiffusionXLInpaintPipeline"},
    control_tasks={"txt2img": "StableDiffusionXLControlNetPipeline",
                   "img2img": "StableDiffusionXLControlNetImg2ImgPipeline"},
    defaults=Defaults(width=1024, height=1024, steps=25, cfg_scale=5.0, sampler="dpmpp_2m", schedule="karras"),
    demos={"demo-sdxl": "pipelines.demo_model:build_sdxl"},
    price_factor="sdxl_multiplier",
    latent_rgb=(latent_rgb.SDXL,),
)
