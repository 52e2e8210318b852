"""Stable Diffusion 1.x and its fine-tunes: a UNet on 4-channel latents, CLIP ViT-L text, epsilon steps."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

SD15 = Family(
    name="sd15", label="Stable Diffusion 1.5", media="image", denoiser="unet", scheduling="discrete",
    textual_inversion=True,
    tasks={"txt2img": "StableDiffusionPipeline", "img2img": "StableDiffusionImg2ImgPipeline",
           "inpaint": "StableDiffusionInpaintPipeline"},
    control_tasks={"txt2img": "StableDiffusionControlNetPipeline",
                   "img2img": "StableDiffusionControlNetImg2ImgPipeline"},
    defaults=Defaults(width=512, height=512, steps=20, cfg_scale=7.0, sampler="euler", schedule="normal"),
    demos={"demo-sd15": "pipelines.demo_model:build_sd15",
           "demo-sd15-inpaint": "pipelines.demo_model:build_sd15_inpaint"},
    latent_rgb=(latent_rgb.SD15,),
)
