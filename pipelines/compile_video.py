"""The compiler's video nodes: img2vid (Stable Video Diffusion), txt2vid (AnimateDiff), interpolate and
load_video. Split out of compiler.py, whose `Compiler` inherits these methods; the checks and the rules
(never repair a request silently, say what to do) are the same. Pure: no torch.
"""
from __future__ import annotations

import dataclasses

from configs import ModelEntry
from pipelines.checks import MAX_SEED, Checker
from pipelines.facts import Describe, Made
from pipelines.plan import Img2VidStep, InterpolateStep, LoadVideoStep, ModelRef, Txt2VidStep
from pipelines.spec import Img2Vid, Interpolate, LoadVideo, Node, Txt2Vid

FACTORS = (2, 4)
INTERPOLATORS = ("flow",)
MAX_MOTION_BUCKET = 255
MAX_VIDEO_FPS = 120          # what the MP4 writer accepts; interpolation may go up to it


class VideoNodes:
    """Compiler methods for the nodes that make or take videos (mixed into `Compiler`)."""

    def _load_video(self, node: Node, describe: Describe | None, check: Checker):
        p: LoadVideo = node.params
        facts = describe(p.artifact_id, "video") if describe and isinstance(p.artifact_id, str) and p.artifact_id \
            else None
        if facts is None:
            check.fail("unknown_video", "artifact_id", f"No video {p.artifact_id!r}. Upload an MP4 first, or use the "
                       "id of one of your videos.")
            return None
        step = LoadVideoStep(id=node.id, artifact_id=p.artifact_id, width=facts.width, height=facts.height,
                             frames=facts.frames, fps=facts.fps)
        return step, Made(1, facts.width, facts.height, frames=facts.frames, fps=facts.fps)

    def _img2vid(self, node: Node, image, check: Checker, notes: list[str]):
        p: Img2Vid = node.params
        model = self._video_model(p.model, "svd", "model", check)
        if model is None:
            return None
        width = self._side("width", model.width if p.width is None else p.width, check)
        height = self._side("height", model.height if p.height is None else p.height, check)
        frames, fps = self._frames_and_fps(p.frames, p.fps, model, check)
        self._pixels(width, height, check)
        steps = check.integer("steps", model.steps if p.steps is None else p.steps, 1, self.limits.max_steps)
        motion = check.integer("motion_bucket_id", p.motion_bucket_id, 1, MAX_MOTION_BUCKET,
                               " Around 127 is SVD's usual motion; higher moves more.")
        noise = check.number("noise_aug_strength", p.noise_aug_strength, 0.0, 1.0)
        low = check.number("min_cfg_scale", p.min_cfg_scale, 0.0, self.limits.max_cfg_scale)
        high = check.number("cfg_scale", model.cfg_scale if p.cfg_scale is None else p.cfg_scale, 0.0,
                            self.limits.max_cfg_scale)
        chunk = self._chunk(p.decode_chunk_size, frames, check)
        seed = self._seed(p.seed, check)
        if check.problems:
            return None
        if image.width * height != image.height * width:
            notes.append(f"The image ({image.width}x{image.height}) was resized to the video's {width}x{height}, "
                         "which changes its shape; give width and height to keep it.")
        step = Img2VidStep(id=node.id, inputs=(("image", node.link("image").node),), width=width, height=height,
                           model=self._ref(model), frames=frames, fps=float(fps), steps=steps,
                           motion_bucket_id=motion, noise_aug_strength=noise, min_cfg_scale=low, cfg_scale=high,
                           decode_chunk_size=chunk, seeds=self._seeds(seed, image.count))
        return step, Made(image.count, width, height, frames=frames, fps=float(fps))

    def _txt2vid(self, node: Node, check: Checker):
        p: Txt2Vid = node.params
        adapter = self._video_model(p.motion_adapter, "animatediff", "motion_adapter", check)
        if adapter is None:
            return None
        # The adapter's defaults (steps, guidance, sampler) suit its motion modules better than the image
        # model's, so they stand in for the ones the request leaves out.
        p = dataclasses.replace(p, steps=adapter.steps if p.steps is None else p.steps,
                                cfg_scale=adapter.cfg_scale if p.cfg_scale is None else p.cfg_scale,
                                sampler=p.sampler or adapter.sampler, schedule=p.schedule or adapter.schedule)
        common = self._sampling(p, check, need_prompt=True)
        if common is None:
            return None
        model = common.pop("entry")
        if model.family != adapter.base_family:
            check.fail("wrong_model", "model", f"Motion adapter {adapter.id!r} animates {adapter.base_family} models; "
                       f"{model.id!r} is {model.family}. Choose one of "
                       f"{sorted(m.id for m in self.models.values() if m.family == adapter.base_family)}.")
        width = self._side("width", adapter.width if p.width is None else p.width, check)
        height = self._side("height", adapter.height if p.height is None else p.height, check)
        frames, fps = self._frames_and_fps(p.frames, p.fps, adapter, check)
        self._pixels(width, height, check)
        chunk = self._chunk(p.decode_chunk_size, frames, check)
        batch = common.pop("batch")
        if check.problems:
            return None
        step = Txt2VidStep(id=node.id, width=width, height=height, motion_adapter=self._ref(adapter), frames=frames,
                           fps=float(fps), decode_chunk_size=chunk, seeds=self._seeds(common.pop("seed"), batch),
                           **common)
        return step, Made(batch, width, height, frames=frames, fps=float(fps))

    def _interpolate(self, node: Node, video, check: Checker):
        p: Interpolate = node.params
        factor = check.integer("factor", p.factor, min(FACTORS), max(FACTORS))
        if factor is not None and factor not in FACTORS:
            check.fail("unknown_choice", "factor", f"factor must be one of {list(FACTORS)}, got {factor}.")
        method = check.choice("method", p.method, self.interpolators())
        if check.problems:
            return None
        model = self._ref(self.models[method]) if method not in INTERPOLATORS else None
        frames = (video.frames - 1) * factor + 1
        fps = video.fps * factor
        if frames > self.limits.max_frames:
            check.fail("too_many_frames", "factor", f"x{factor} makes {frames} frames from {video.frames}; a video "
                       f"may have {self.limits.max_frames}. Use a smaller factor or a shorter video.")
        if fps > MAX_VIDEO_FPS:
            check.fail("fps_out_of_range", "factor", f"x{factor} makes {fps:g} fps from {video.fps:g}; the most is "
                       f"{MAX_VIDEO_FPS}. Use a smaller factor.")
        if check.problems:
            return None
        step = InterpolateStep(id=node.id, inputs=(("video", node.link("video").node),), width=video.width,
                               height=video.height, factor=factor, method=method, model=model, frames=frames,
                               fps=fps, seeds=tuple(range(video.count)))
        return step, Made(video.count, video.width, video.height, frames=frames, fps=fps)

    def interpolators(self) -> tuple[str, ...]:
        """Names the interpolate node's `method` takes: optical flow, then the catalogue's learned models."""
        return INTERPOLATORS + tuple(m.id for m in self.models.values() if m.family == "interpolator")

    # -- shared ----------------------------------------------------------------------------------

    def _video_model(self, model_id, family: str, name: str, check: Checker) -> ModelEntry | None:
        """The catalogue entry of `family` called `model_id` ("" = the first of that family)."""
        choices = [m for m in self.models.values() if m.family == family]
        if model_id in ("", None) and choices:
            return choices[0]
        if isinstance(model_id, str) and model_id in self.models and self.models[model_id].family == family:
            return self.models[model_id]
        check.fail("unknown_model", name, f"Unknown {family} model {model_id!r}; choose one of "
                   f"{sorted(m.id for m in choices) or 'none'} (add others to configs/models.toml).")
        return None

    def _frames_and_fps(self, frames, fps, model: ModelEntry, check: Checker) -> tuple[int | None, int | None]:
        frames = check.integer("frames", model.frames if frames is None else frames, 2, self.limits.max_frames,
                               " Make a shorter video, then interpolate it for more frames.")
        fps = check.integer("fps", model.fps if fps is None else fps, 1, self.limits.max_fps)
        return frames, fps

    def _chunk(self, chunk, frames: int | None, check: Checker) -> int | None:
        if chunk is None:
            return frames
        return check.integer("decode_chunk_size", chunk, 1, max(frames or 1, 1),
                             " Fewer frames at a time use less memory.")

    def _seed(self, seed, check: Checker) -> int | None:
        seed = check.integer("seed", seed, -1, MAX_SEED, " Use -1 for a random seed.")
        return self.seed_source() if seed == -1 else seed

    def _ref(self, entry: ModelEntry) -> ModelRef:
        return ModelRef(id=entry.id, family=entry.family, source=entry.source, hash=self.model_hash(entry))
