"""What runs each kind of plan step: one executor per step kind, in one explicit registry (`EXECUTORS`).

An executor takes the step, the outputs of the steps it names as inputs (input name -> list of images or
videos) and the `Engine` it runs on, reports progress through `on_step`, and returns what the step makes.
The declarations of what a step *is* live in the pure `pipelines/nodes/`; a test checks that every step
kind they can make has an executor here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import PIL.Image

from pipelines.backend import DiffusersBackend, StepCallback
from pipelines.plan import Step
from pipelines.video_backend import Video, VideoBackend


@dataclass(frozen=True)
class Engine:
    """What executors run on: the image and video backends, and how stored inputs are read."""

    images: DiffusersBackend
    videos: VideoBackend
    load_image: Callable[[str], PIL.Image.Image]
    load_video: Callable[[str], Video]


@dataclass(frozen=True)
class Executor:
    """Runs one step kind."""

    run: Callable[[Step, dict[str, list], Engine, StepCallback], list]


EXECUTORS: dict[str, Executor] = {
    "load_image": Executor(lambda step, inputs, engine, on_step: [engine.load_image(step.artifact_id)]),
    "load_video": Executor(lambda step, inputs, engine, on_step: [engine.load_video(step.artifact_id)]),
    "txt2img": Executor(lambda step, inputs, engine, on_step:
                        engine.images.txt2img(step, on_step, inputs.get("control", ()))),
    "img2img": Executor(lambda step, inputs, engine, on_step:
                        engine.images.img2img(step, inputs["image"], on_step, inputs.get("control", ()))),
    "edit": Executor(lambda step, inputs, engine, on_step: engine.images.edit(step, inputs["image"], on_step)),
    "canny": Executor(lambda step, inputs, engine, on_step: engine.images.canny(step, inputs["image"], on_step)),
    "inpaint": Executor(lambda step, inputs, engine, on_step:
                        engine.images.inpaint(step, inputs["image"], inputs["mask"], on_step)),
    "outpaint": Executor(lambda step, inputs, engine, on_step:
                         engine.images.outpaint(step, inputs["image"], on_step)),
    "upscale": Executor(lambda step, inputs, engine, on_step: engine.images.upscale(step, inputs["image"], on_step)),
    "img2vid": Executor(lambda step, inputs, engine, on_step: engine.videos.img2vid(step, inputs["image"], on_step)),
    "txt2vid": Executor(lambda step, inputs, engine, on_step: engine.videos.txt2vid(step, on_step)),
    "video": Executor(lambda step, inputs, engine, on_step:
                      engine.videos.family_video(step, inputs.get("image", []), on_step)),
    "interpolate": Executor(lambda step, inputs, engine, on_step:
                            engine.videos.interpolate(step, inputs["video"], on_step)),
}
