"""Stable Diffusion 3.5 (large, medium): an MMDiT flow transformer with two CLIPs and T5, real CFG."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

SD35 = Family(
    name="sd35", label="Stable Diffusion 3.5", media="image", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"txt2img": "StableDiffusion3Pipeline", "img2img": "StableDiffusion3Img2ImgPipeline",
           "inpaint": "StableDiffusion3InpaintPipeline"},
    defaults=Defaults(width=1024, height=1024, steps=28, cfg_scale=3.5, sampler="euler", schedule="normal"),
    size_multiple=16, prompt_tokens=256, uses_max_sequence_length=True,
    demos={"demo-sd35": "pipelines.demos.sd35:build_sd35"},
    control_tasks={"txt2img": "StableDiffusion3ControlNetPipeline"},
    controlnet_class="SD3ControlNetModel",
    control_demos={"demo-controlnet-sd35": "pipelines.demos.sd35:build_sd35_controlnet"},
    price_factor=3.0,
    latent_rgb=(latent_rgb.SD3,),
)
