"""Qwen-Image-Edit: Qwen-Image's transformer trained to edit, reading the image through Qwen2.5-VL's vision tower
as well as the VAE; instruction + image -> image, true CFG with a negative prompt. A checkpoint of its own (its
pipeline has an image processor Qwen-Image's has not), so a family of its own."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

QWEN_IMAGE_EDIT = Family(
    name="qwen-image-edit", label="Qwen-Image-Edit", media="image", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"edit": "QwenImageEditPipeline"},
    defaults=Defaults(width=1024, height=1024, steps=50, cfg_scale=4.0, sampler="euler", schedule="normal"),
    guidance="true_cfg", size_multiple=16, prompt_tokens=512, uses_max_sequence_length=False,
    sources=("demo", "folder", "hub", "gguf"),
    transformer_class="QwenImageTransformer2DModel", gguf_architectures=("qwen_image",),
    samplers=("euler", "lcm"),          # its pipeline passes its own sigmas, which the multistep solvers refuse
    demos={"demo-qwen-image-edit": "pipelines.demos.qwen_image:build_qwen_image_edit"},
    price_factor=6.0,
    latent_rgb=(latent_rgb.WAN21,),
)
