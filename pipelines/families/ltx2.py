"""LTX-2: an audio-video flow transformer reading Gemma 3's hidden states; text or image to video."""
from pipelines import latent_rgb
from pipelines.family import Defaults, Family

LTX2 = Family(
    name="ltx2", label="LTX-2", media="video", denoiser="transformer", scheduling="flow",
    cuda_dtype="bfloat16", tile_vae=True,
    tasks={"txt2vid": "LTX2Pipeline", "img2vid": "LTX2ImageToVideoPipeline"},
    defaults=Defaults(width=768, height=512, steps=40, cfg_scale=4.0, sampler="euler", schedule="normal",
                      frames=121, fps=24),
    size_multiple=32, prompt_tokens=1024, frames_rule=(8, 1), sources=("demo", "folder", "hub"),
    fps_argument="frame_rate", uses_max_sequence_length=True,
    samplers=("euler", "uni_pc_bh2", "lcm"),     # its pipeline passes its own sigmas, which DPM++ and DEIS refuse
    demos={"demo-ltx2": "pipelines.demos.ltx2:build_ltx2"},
    latent_rgb=(latent_rgb.LTX2,),
)
