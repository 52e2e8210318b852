"""Qwen-Image: a 20B MMDiT flow transformer reading Qwen2.5-VL's hidden states; true CFG with a negative
prompt. (Qwen-Image-Edit, which edits from an instruction, is `qwen_image_edit`.)"""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

QWEN_IMAGE = Family(
    name="qwen-image", label="Qwen-Image", media="image", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"txt2img": "QwenImagePipeline", "img2img": "QwenImageImg2ImgPipeline",
           "inpaint": "QwenImageInpaintPipeline"},
    defaults=Defaults(width=1328, height=1328, steps=50, cfg_scale=4.0, sampler="euler", schedule="normal"),
    guidance="true_cfg", size_multiple=16, prompt_tokens=512, uses_max_sequence_length=True,
    sources=("demo", "folder", "hub", "gguf"),
    samplers=("euler", "lcm"),          # its pipelines pass their own sigmas, which the multistep solvers refuse
    transformer_class="QwenImageTransformer2DModel", gguf_architectures=("qwen_image",),
    demos={"demo-qwen-image": "pipelines.demos.qwen_image:build_qwen_image"},
    price_factor=6.0,
    latent_rgb=(latent_rgb.WAN21,),
)
