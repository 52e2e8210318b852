"""Z-Image (Turbo): a 6B single-stream flow transformer reading Qwen3's hidden states; few steps. Its
pipeline runs CFG whenever guidance is above 0 (Turbo is distilled to run without: guidance 0)."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

Z_IMAGE = Family(
    name="z-image", label="Z-Image", media="image", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"txt2img": "ZImagePipeline", "img2img": "ZImageImg2ImgPipeline", "inpaint": "ZImageInpaintPipeline"},
    defaults=Defaults(width=1024, height=1024, steps=9, cfg_scale=0.0, sampler="euler", schedule="normal"),
    size_multiple=16, prompt_tokens=512, uses_max_sequence_length=True,
    samplers=("euler", "lcm"),          # its pipeline passes its own sigmas, which the multistep solvers refuse
    sources=("demo", "folder", "hub", "gguf"),
    transformer_class="ZImageTransformer2DModel", gguf_architectures=("lumina2", "z_image"),
    demos={"demo-z-image": "pipelines.demos.z_image:build_z_image"},
    price_factor=2.0,
    latent_rgb=(latent_rgb.FLUX1,),
)
