"""Wan 2.2 (TI2V 5B): a video flow transformer reading UMT5's hidden states; text or image to video."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

WAN22 = Family(
    name="wan22", label="Wan 2.2", media="video", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"txt2vid": "WanPipeline", "img2vid": "WanImageToVideoPipeline"},
    defaults=Defaults(width=1280, height=704, steps=50, cfg_scale=5.0, sampler="uni_pc_bh2", schedule="normal",
                      frames=121, fps=24),
    size_multiple=32, prompt_tokens=512, uses_max_sequence_length=True, frames_rule=(4, 1),
    sources=("demo", "folder", "hub", "gguf"),
    transformer_class="WanTransformer3DModel", gguf_architectures=("wan",),
    demos={"demo-wan22": "pipelines.demos.wan22:build_wan22"},
    latent_rgb=(latent_rgb.WAN22, latent_rgb.WAN21),
)
