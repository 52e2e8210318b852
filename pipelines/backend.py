"""DiffusersBackend: runs one plan step on a local torch device with a diffusers pipeline.

The backend receives fully resolved steps (see plan.py) and returns PIL images. It reports each
denoising step through `on_step(i, n)`; raising from `on_step` (JobCancelled) stops the pipeline
at once, before the VAE decode.
"""
from __future__ import annotations

import platform
import threading
from collections.abc import Callable

import diffusers
import PIL.Image
import torch
import transformers

from pipelines.model_cache import ModelCache
from pipelines.plan import Txt2ImgStep
from pipelines.samplers import SAMPLERS, make_scheduler

StepCallback = Callable[[int, int], None]


def _generator(seed: int) -> torch.Generator:
    # CPU generators make the initial noise the same on every device, so a seed means one picture.
    return torch.Generator("cpu").manual_seed(seed)


class DiffusersBackend:
    """Runs steps on `models.device`, one at a time.

    Args:
        models: the model cache that loads and keeps pipelines.
    """

    def __init__(self, models: ModelCache):
        self.models = models
        # One pipeline object is shared by every job on its model, and its scheduler is swapped per
        # job; the lock keeps two jobs in one process from using it at once.
        self._lock = threading.Lock()

    def environment(self) -> dict:
        """What, besides the plan, decides the output bytes."""
        return {"torch": torch.__version__, "diffusers": diffusers.__version__,
                "transformers": transformers.__version__, "pillow": PIL.__version__,
                "device": self.models.device.type, "dtype": str(self.models.dtype).removeprefix("torch."),
                "python": platform.python_version()}

    def txt2img(self, step: Txt2ImgStep, on_step: StepCallback) -> list[PIL.Image.Image]:
        """Make the step's images; image k comes from `step.seeds[k]`.

        Samplers whose noise follows one generator per image run as one batch; the others (whose
        noise is seeded once per call) run image by image so each image matches its seed alone.
        """
        with self._lock:
            pipe = self.models.get(step.model)
            if SAMPLERS[step.sampler].batch_consistent:
                groups = [list(step.seeds)]
            else:
                groups = [[seed] for seed in step.seeds]
            images, done = [], 0
            for seeds in groups:
                offset = done

                def report(p, i, t, tensors, offset=offset):
                    total = p.num_timesteps * len(groups)
                    on_step(offset + i + 1, total)
                    return tensors

                scheduler, extra = make_scheduler(dict(pipe.scheduler.config), step.sampler, step.schedule,
                                                  step.steps, step.model.family, seeds[0])
                pipe.scheduler = scheduler
                result = pipe(prompt=[step.prompt] * len(seeds), negative_prompt=[step.negative_prompt] * len(seeds),
                              width=step.width, height=step.height, num_inference_steps=step.steps,
                              guidance_scale=step.cfg_scale, generator=[_generator(s) for s in seeds],
                              callback_on_step_end=report, output_type="pil", **extra)
                done += pipe.num_timesteps
                images += result.images
            return images
