"""AnimateDiff: motion modules that animate an SD1.5-family model, text to video."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

ANIMATEDIFF = Family(
    name="animatediff", label="AnimateDiff", media="video", denoiser="unet", scheduling="discrete",
    tasks={"txt2vid": "AnimateDiffPipeline"}, adapts="sd15",
    defaults=Defaults(width=512, height=512, steps=20, cfg_scale=7.5, sampler="euler", schedule="normal",
                      frames=16, fps=8),
    sources=("demo", "folder"),
    demos={"demo-motion-adapter": "pipelines.video_models:build_demo_motion_adapter"},
    latent_rgb=(latent_rgb.SD15,),
)
