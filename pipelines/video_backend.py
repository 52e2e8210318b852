"""VideoBackend: runs the steps that make videos, img2vid (Stable Video Diffusion), txt2vid (AnimateDiff), the
video families' own pipelines (Wan, LTX-2) and interpolation, with the model cache and device turns
(pipelines.turns) it shares with the image backend.

The diffusers pipeline denoises each video to latents; we then decode them `decode_chunk_size` frames
at a time, the same chunks the pipeline itself would decode, so the frames are the pipeline's own while
progress can report decoded frames and a cancel can stop between chunks. Video k comes from
`step.seeds[k]` (and, for img2vid, from input image k).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch

from pipelines import image_ops
from pipelines.interpolate import interpolate
from pipelines.learned_interpolation import interpolate_learned
from pipelines.loras import ExtraFile, applied_embeddings, applied_loras, extra_file
from pipelines.model_cache import ModelCache
from pipelines.backend import on_device, prompting, seeded_global_rng
from pipelines.families import FAMILIES
from pipelines.placement import tile_vae
from pipelines.preview import Latents
from pipelines.plan import Img2VidStep, InterpolateStep, Txt2VidStep, VideoDiffusionStep
from pipelines.samplers import make_scheduler
from pipelines.turns import DeviceTurns

StepCallback = Callable[..., None]          # (i, n) for denoising steps, (i, n, "frame") for decoded frames


@dataclass(frozen=True)
class Video:
    """Frames of one size, shown at `fps` frames per second."""

    frames: list[PIL.Image.Image]
    fps: float


def _to_bytes(frame: np.ndarray) -> np.ndarray:
    """A frame of floats in [0, 1] (a pipeline's "np" output) as 8-bit RGB, rounded as diffusers' own PIL output is."""
    return (frame * 255).round().clip(0, 255).astype("uint8")


def _generator(seed: int) -> torch.Generator:
    # As for images: CPU noise, so a seed means one video on every device.
    return torch.Generator("cpu").manual_seed(seed)


class VideoBackend:
    """Makes videos with the pipelines of `models`.

    Args:
        models: the model cache (shared with the image backend).
        turns: taken while a pipeline runs; the image backend's, so image and video jobs take turns on the
            device and never use one pipeline at once.
        extras: kind ("lora" or "embedding") -> the files available, by name.
    """

    def __init__(self, models: ModelCache, turns: DeviceTurns,
                 extras: Callable[[str], dict[str, ExtraFile]] = lambda kind: {}):
        self.models = models
        self.turns = turns
        self.extras = extras

    def _on_device(self, refs, task: str, on_step: StepCallback, steps: int):
        return on_device(self.turns, self.models, refs, task, on_step, steps)

    def img2vid(self, step: Img2VidStep, images: list[PIL.Image.Image], on_step: StepCallback) -> list[Video]:
        """One video per input image; the image is resized to the video's size (the plan noted any change
        of shape)."""
        sized = [image_ops.to_rgb(im).resize((step.width, step.height), PIL.Image.LANCZOS) for im in images]
        videos = []
        with self._on_device([step.model], "img2vid", on_step, step.steps) as on_step:
            pipe = self.models.video(step.model)
            for k, (image, seed) in enumerate(zip(sized, step.seeds)):
                latents = pipe(image=image, width=step.width, height=step.height, num_frames=step.frames,
                               num_inference_steps=step.steps, min_guidance_scale=step.min_cfg_scale,
                               max_guidance_scale=step.cfg_scale, fps=round(step.fps),
                               motion_bucket_id=step.motion_bucket_id, noise_aug_strength=step.noise_aug_strength,
                               decode_chunk_size=step.decode_chunk_size, generator=_generator(seed),
                               output_type="latent", callback_on_step_end=self._reporter(on_step, k, step)).frames
                # SVD latents are (batch, frames, channels, h, w); its decoder wants the chunk's frame count.
                chunks = [latents[:, i:i + step.decode_chunk_size]
                          for i in range(0, step.frames, step.decode_chunk_size)]
                decoded = self._decode(chunks, lambda c: pipe.decode_latents(c, c.shape[1], c.shape[1]),
                                       on_step, k, step)
                videos.append(Video(pipe.video_processor.postprocess_video(decoded, output_type="pil")[0], step.fps))
        return videos

    def txt2vid(self, step: Txt2VidStep, on_step: StepCallback) -> list[Video]:
        """One video per seed, each from its own call, so video k is the same whatever the batch size."""
        loras = [(extra_file(self.extras, "lora", name, sha256), weight) for name, sha256, weight, _ in step.loras]
        embeddings = [(extra_file(self.extras, "embedding", name, sha256), name) for name, sha256 in step.embeddings]
        videos = []
        with self._on_device([step.model, step.motion_adapter], "txt2vid", on_step, step.steps) as on_step:
            pipe = self.models.animatediff(step.model, step.motion_adapter)
            with applied_embeddings(pipe, embeddings), applied_loras(pipe, loras):
                for k, seed in enumerate(step.seeds):
                    scheduler, schedule_args = make_scheduler(dict(pipe.scheduler.config), step.sampler,
                                                              step.schedule, step.steps, step.model.family, seed)
                    pipe.scheduler = scheduler
                    latents = pipe(prompt=step.prompt, negative_prompt=step.negative_prompt, num_frames=step.frames,
                                   width=step.width, height=step.height, num_inference_steps=step.steps,
                                   guidance_scale=step.cfg_scale, generator=[_generator(seed)],
                                   decode_chunk_size=step.decode_chunk_size, output_type="latent",
                                   callback_on_step_end=self._reporter(on_step, k, step), **schedule_args).frames
                    # AnimateDiff latents are (batch, channels, frames, h, w).
                    chunks = [latents[:, :, i:i + step.decode_chunk_size]
                              for i in range(0, step.frames, step.decode_chunk_size)]
                    decoded = self._decode(chunks, lambda c: pipe.decode_latents(c, c.shape[2]), on_step, k, step)
                    videos.append(Video(pipe.video_processor.postprocess_video(decoded, output_type="pil")[0],
                                        step.fps))
        return videos

    def family_video(self, step: VideoDiffusionStep, images: list[PIL.Image.Image],
                     on_step: StepCallback) -> list[Video]:
        """Wan and LTX-2: one video per seed, each from its own call of the family's pipeline (its txt2vid, or its
        img2vid animating input image k // per_input, resized to the video's size), which decodes its own
        frames."""
        family = FAMILIES[step.model.family]
        task = "img2vid" if images else "txt2vid"
        sized = [image_ops.to_rgb(im).resize((step.width, step.height), PIL.Image.LANCZOS) for im in images]
        rate = {family.fps_argument: step.fps} if family.fps_argument else {}
        loras = [(extra_file(self.extras, "lora", name, sha256), weight) for name, sha256, weight, _ in step.loras]
        videos = []
        with self._on_device([step.model], task, on_step, step.steps) as on_step:
            pipe = self.models.get(step.model, task)
            with applied_loras(pipe, loras):
                for k, seed in enumerate(step.seeds):
                    scheduler, schedule_args = make_scheduler(dict(pipe.scheduler.config), step.sampler,
                                                              step.schedule, step.steps, step.model.family, seed)
                    pipe.scheduler = scheduler
                    given = {"image": sized[step.source_index(k)]} if images else {}
                    tile_vae(pipe, step.model.family, step.width, step.height, step.frames)
                    with seeded_global_rng(seed, self.models.device):
                        frames = pipe(prompt=step.prompt, num_frames=step.frames, width=step.width,
                                      height=step.height, num_inference_steps=step.steps, generator=_generator(seed),
                                      output_type="np", callback_on_step_end=self._reporter(on_step, k, step),
                                      **prompting(step, 1), **rate, **given, **schedule_args).frames[0]
                    videos.append(Video([PIL.Image.fromarray(_to_bytes(frame)) for frame in frames], step.fps))
        return videos

    def interpolate(self, step: InterpolateStep, videos: list[Video], on_step: StepCallback) -> list[Video]:
        """Each video with `step.factor - 1` frames made between each pair, by optical flow or by the step's
        learned model; progress counts the pairs done."""
        total = sum(len(v.frames) - 1 for v in videos)
        done = 0

        def on_pair(i: int, n: int) -> None:
            on_step(done + i, total)

        results = []
        on_step(0, total)
        if step.model is None:
            for video in videos:
                results.append(Video(interpolate(video.frames, step.factor), step.fps))
                done += len(video.frames) - 1
                on_step(done, total)
            return results
        with self._on_device([step.model], "interpolate", on_step, total) as on_step:
            net = self.models.interpolator(step.model)
            for video in videos:
                results.append(Video(interpolate_learned(net, video.frames, step.factor, on_pair), step.fps))
                done += len(video.frames) - 1
        return results

    @staticmethod
    def _reporter(on_step: StepCallback, video: int, step):
        """A `callback_on_step_end` reporting denoising step i of all the step's videos' steps."""
        total = step.steps * len(step.seeds)

        def report(pipe, i, t, tensors):
            on_step(video * step.steps + i + 1, total,
                    latents=Latents(tensors["latents"], step.model, step.width, step.height, pipe))
            return tensors
        return report

    @staticmethod
    @torch.no_grad()
    def _decode(chunks: list[torch.Tensor], decode, on_step: StepCallback, video: int, step) -> torch.Tensor:
        """Decode latent chunks in order, reporting decoded frames; the frames as (batch, channels, frames,
        h, w) floats."""
        total, done, decoded = step.frames * len(step.seeds), video * step.frames, []
        on_step(done, total, "frame")
        for chunk in chunks:
            decoded.append(decode(chunk))
            done += decoded[-1].shape[2]
            on_step(done, total, "frame")
        return torch.cat(decoded, dim=2)
