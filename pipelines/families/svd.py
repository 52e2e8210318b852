"""Stable Video Diffusion: image to video with a spatio-temporal UNet and its own EDM (Karras) scheduler."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

SVD = Family(
    name="svd", label="Stable Video Diffusion", media="video", denoiser="unet", scheduling="edm",
    tasks={"img2vid": "StableVideoDiffusionPipeline"},
    defaults=Defaults(width=1024, height=576, steps=25, cfg_scale=3.0, sampler="euler", schedule="karras",
                      frames=14, fps=7),
    negative_prompt=False, sources=("demo", "folder"),
    demos={"demo-svd": "pipelines.video_models:build_demo_svd"},
    latent_rgb=(latent_rgb.SD15,), latent_layout="frames_first",
)
