"""DiffusersBackend: runs plan steps on a local torch device with diffusers pipelines.

The backend receives fully resolved steps (see plan.py) and input images, and returns PIL images.
It reports each denoising step through `on_step(i, n, latents=...)` (the latents, for live previews:
pipelines.preview); raising from `on_step` (JobCancelled)
stops the pipeline at once, before the VAE decode. Image k of a step comes from `step.seeds[k]`
and from input image k // step.per_input.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import platform
import subprocess
from collections.abc import Callable, Iterable

import diffusers
import imageio_ffmpeg
import PIL.features
import PIL.Image
import PIL.ImageChops
import torch
import transformers

from pipelines import image_ops
from pipelines.loras import ExtraFile, applied_embeddings, applied_loras, extra_file
from pipelines.model_cache import ModelCache
from pipelines.control import canny
from pipelines.families import FAMILIES
from pipelines.placement import tile_vae
from pipelines.preview import Latents
from pipelines.plan import (CannyStep, DiffusionStep, EditStep, Img2ImgStep, InpaintStep, OutpaintStep,
                            Txt2ImgStep, UpscaleStep)
from pipelines.samplers import SAMPLERS, make_scheduler
from pipelines.turns import WAITING, DeviceTurns, Turn

StepCallback = Callable[[int, int], None]
Images = list[PIL.Image.Image]


@functools.cache
def machine_facts() -> dict[str, str]:
    """The CPU's model name and the ffmpeg build, for `DiffusersBackend.environment`: fixed for the process,
    so looked up once (`ffmpeg -version` takes ~50 ms)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        ffmpeg = imageio_ffmpeg.get_ffmpeg_version()
    except (OSError, RuntimeError, subprocess.SubprocessError):
        ffmpeg = "unavailable"
    return {"cpu": cpu, "ffmpeg": ffmpeg}


def _generator(seed: int) -> torch.Generator:
    # CPU generators make the initial noise the same on every device, so a seed means one picture.
    return torch.Generator("cpu").manual_seed(seed)


def prompting(step: DiffusionStep, count: int) -> dict:
    """The guidance and prompt arguments of a pipeline call on the step's family (`pipelines.families`): real
    CFG with the negative prompt, distilled guidance (the scale is an input of the model; no negative prompt)
    or true CFG (`true_cfg_scale`, which a negative prompt, even an empty one, switches on)."""
    family = FAMILIES[step.model.family]
    arguments = {}
    if family.guidance == "true_cfg":
        arguments["true_cfg_scale"] = step.cfg_scale
    else:
        arguments["guidance_scale"] = step.cfg_scale
    if family.negative_prompt:
        arguments["negative_prompt"] = [step.negative_prompt] * count
    if family.uses_max_sequence_length:
        arguments["max_sequence_length"] = family.prompt_tokens
    return arguments


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device):
    """torch's global RNG seeded with `seed` for one pipeline call, and restored after. A few pipelines draw from
    it besides their generators (SD3's ControlNet pipeline samples the control image's latents with none), so
    their outputs follow the seed too, and the caller's RNG stays as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def paced(turn: Turn, on_step: StepCallback, device: torch.device) -> StepCallback:
    """`on_step`, then `turn.step()`: the job may hand the device to another at this step boundary and wait
    for its next turn, re-reporting the same step (the runner checks for a cancel there) while it waits.
    torch's global RNG is kept across the wait: the other job seeds its own (`seeded_global_rng`)."""
    def report(i, n, *phase, **extra):
        on_step(i, n, *phase, **extra)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            turn.step(lambda: on_step(i, n, WAITING))
    return report


@contextlib.contextmanager
def on_device(turns: DeviceTurns, models: ModelCache, refs: Iterable, task: str, on_step: StepCallback,
              steps: int):
    """One node's turn on the device (pipelines.turns) with the models `refs` (None entries skipped) pinned in
    the cache; yields the node's `on_step`, paced by the turn. While it waits to start it reports step 0 of
    `steps`, and while it waits to resume the step it is at, each in phase WAITING. `task` names the node in log lines."""
    refs = [ref for ref in refs if ref is not None]
    label = f"{task} on {refs[0].id}" if refs else task
    with turns.turn([models.key(ref) for ref in refs], label, lambda: on_step(0, steps, WAITING)) as turn, \
            models.pinned(refs):
        yield paced(turn, on_step, models.device)


def _takes(pipe, argument: str) -> bool:
    """Whether the pipeline's call takes `argument`."""
    return argument in inspect.signature(type(pipe).__call__).parameters


def _per_input(step: DiffusionStep, images: Images) -> list[tuple[int, PIL.Image.Image, list[int]]]:
    """(input index, input image, the seeds of the images made from it)."""
    n = step.per_input
    return [(i, image, list(step.seeds[i * n:(i + 1) * n])) for i, image in enumerate(images)]


def _sized(step, images: Images) -> Images:
    """The images in RGB at the step's size (inputs and control images alike)."""
    return [image_ops.to_rgb(im).resize((step.width, step.height), PIL.Image.LANCZOS) for im in images]


class DiffusersBackend:
    """Runs steps on `models.device`, one at a time.

    Args:
        models: the model cache that loads and keeps pipelines.
        extras: kind ("lora" or "embedding") -> the files available, by name.
        threads: torch threads for each run (`use_threads`); 0 leaves torch's count.
        turns: how the jobs of this process take turns on the device (shared with the video backend);
            default: a 2 s quantum.
    """

    def __init__(self, models: ModelCache, extras: Callable[[str], dict[str, ExtraFile]] = lambda kind: {},
                 threads: int = 0, turns: DeviceTurns | None = None):
        self.models = models
        self.extras = extras
        self.threads = threads
        # One pipeline object is shared by every job on its model, and its scheduler is swapped per
        # call; turns keep two jobs from using it at once, and let jobs on other models interleave.
        self.turns = turns if turns is not None else DeviceTurns()

    def _on_device(self, refs, task: str, on_step: StepCallback, steps: int):
        return on_device(self.turns, self.models, refs, task, on_step, steps)

    def use_threads(self) -> None:
        """Give the calling thread `threads` torch threads (0: leave torch's count). The count is the calling
        thread's own (OpenMP keeps it per thread), so a worker thread sets it before each job."""
        if self.threads:
            torch.set_num_threads(self.threads)

    def environment(self) -> dict:
        """What, besides the plan, decides the output bytes; stored in every recipe, and compared by
        pipelines.environment when a file is replayed (issue 18, item 4).

        Besides the library versions, device and dtype, each of these was measured to change the bytes of
        the demo models' images and videos (bench/determinism.py): `torch_threads` (1, 2 and 4 threads
        all differ: a reduction splits its work by thread), `cpu_capability` (the SIMD level ATen's
        kernels dispatch to), `cpu` (oneDNN picks its kernels by the processor's own instruction set:
        capping it with ONEDNN_MAX_CPU_ISA changed the bytes), `mkldnn` (whether oneDNN runs the
        convolutions), `png_zlib` (zlib-ng and zlib deflate the same pixels to other PNG bytes) and
        `ffmpeg` (another build writes other MP4 bytes). On CUDA it adds `gpu`, `cuda` and `cudnn`.
        Interop threads, deterministic algorithms and the float32 matmul precision changed nothing on
        CPU and are not recorded. Values are strings or ints.
        """
        zlib_ng = "zlib_ng" in PIL.features.features and PIL.features.check_feature("zlib_ng")
        env = {"torch": str(torch.__version__), "diffusers": diffusers.__version__,
               "transformers": transformers.__version__, "pillow": PIL.__version__,
               "device": self.models.device.type, "dtype": str(self.models.dtype).removeprefix("torch."),
               "python": platform.python_version(),
               "torch_threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "cpu": machine_facts()["cpu"],
               "mkldnn": "on" if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else "off",
               "png_zlib": f"zlib-ng {PIL.features.version('zlib_ng')}" if zlib_ng
               else f"zlib {PIL.features.version('zlib')}",
               "ffmpeg": machine_facts()["ffmpeg"]}
        if self.models.device.type == "cuda":
            index = self.models.device.index if self.models.device.index is not None else torch.cuda.current_device()
            env.update(gpu=torch.cuda.get_device_name(index), cuda=torch.version.cuda or "unknown",
                       cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none",
                       # the families that run in another dtype than "dtype" here (bfloat16 for FLUX, ...)
                       family_dtypes=", ".join(f"{f.name}: {str(self.models.dtype_for(f.name)).removeprefix('torch.')}"
                                               for f in FAMILIES if self.models.dtype_for(f.name) != self.models.dtype))
        return env

    # -- steps -----------------------------------------------------------------------------------

    def txt2img(self, step: Txt2ImgStep, on_step: StepCallback, control: Images = ()) -> Images:
        """`control`: the control images (one, or one per image) when the step has a ControlNet."""
        with self._on_device([step.model, step.control_model], "txt2img", on_step, step.steps) as on_step:
            pipe = self.models.get(step.model, "txt2img", step.control_model)
            size = {"width": step.width, "height": step.height}
            if step.control_model is None:
                return self._denoise(pipe, step, [(list(step.seeds), size)], on_step)
            guides = _sized(step, control)
            # SD's ControlNet txt2img pipelines take the control image as `image`, FLUX's as `control_image`.
            name = "control_image" if _takes(pipe, "control_image") else "image"
            calls = [([seed], {**size, name: guides[k % len(guides)], **self._guidance(step)})
                     for k, seed in enumerate(step.seeds)]
            return self._denoise(pipe, step, calls, on_step)

    def img2img(self, step: Img2ImgStep, images: Images, on_step: StepCallback, control: Images = ()) -> Images:
        """Strength 0 returns each input unchanged (at the step's size), as AUTOMATIC1111 does."""
        sized = _sized(step, images)
        if step.strength == 0:
            on_step(1, 1)
            return [im for im in sized for _ in range(step.per_input)]
        with self._on_device([step.model, step.control_model], "img2img", on_step, step.steps) as on_step:
            pipe = self.models.get(step.model, "img2img", step.control_model)
            # SD's img2img pipelines take the size from the image; the flow families' default to 1024x1024
            # unless told.
            size = {"width": step.width, "height": step.height} if _takes(pipe, "width") else {}
            if step.control_model is None:
                calls = [(seeds, {"image": image, "strength": step.strength, **size})
                         for _, image, seeds in _per_input(step, sized)]
            else:
                guides = _sized(step, control)
                calls = [(seeds, {"image": image, "strength": step.strength, "control_image": guides[i % len(guides)],
                                  **self._guidance(step)}) for i, image, seeds in _per_input(step, sized)]
            return self._denoise(pipe, step, calls, on_step)

    def edit(self, step: EditStep, images: Images, on_step: StepCallback) -> Images:
        """Each input image edited as the prompt says, at the step's size."""
        sized = _sized(step, images)
        with self._on_device([step.model], "edit", on_step, step.steps) as on_step:
            pipe = self.models.get(step.model, "edit")
            size = {"width": step.width, "height": step.height} if _takes(pipe, "width") else {}
            if _takes(pipe, "max_area"):
                # Kontext rescales any size asked for to max_area (1024² unless told) in the model's aspect
                # buckets; asked for exactly the step's size, it keeps it.
                size.update(max_area=step.width * step.height, _auto_resize=False)
            calls = [(seeds, {"image": image, **size}) for _, image, seeds in _per_input(step, sized)]
            return self._denoise(pipe, step, calls, on_step)

    def canny(self, step: CannyStep, images: Images, on_step: StepCallback) -> Images:
        on_step(1, 1)
        return [canny(image, step.low, step.high) for image in images]

    def inpaint(self, step: InpaintStep, images: Images, masks: Images, on_step: StepCallback) -> Images:
        """Repaint the white area of each mask, feathered inward by `mask_blur`; every pixel outside the
        mask stays as it was."""
        prepared = []
        for i, image, seeds in _per_input(step, [image_ops.to_rgb(im) for im in images]):
            mask, _ = image_ops.to_mask(masks[i if len(masks) > 1 else 0], image.size)
            if step.invert_mask:
                mask = image_ops.invert_mask(mask)
            prepared.append((image, mask, seeds))
        with self._on_device([step.model], "inpaint", on_step, step.steps) as on_step:
            pipe = self.models.get(step.model, "inpaint")
            return [result for image, mask, seeds in prepared
                    for result in self._inpaint_one(pipe, step, image, mask, seeds, on_step)]

    def outpaint(self, step: OutpaintStep, images: Images, on_step: StepCallback) -> Images:
        """Extend each canvas and paint the new area; the old area stays as it was (but for the feather)."""
        prepared = []
        for _, image, seeds in _per_input(step, [image_ops.to_rgb(im) for im in images]):
            canvas, mask = image_ops.pad_for_outpaint(image, step.left, step.right, step.top, step.bottom,
                                                      feather=step.feather)
            prepared.append((canvas, mask, seeds))
        with self._on_device([step.model], "outpaint", on_step, step.steps) as on_step:
            pipe = self.models.get(step.model, "inpaint")
            results = []
            for canvas, mask, seeds in prepared:
                hard = mask.point(lambda v: 255 if v == 255 else 0)
                starts = [image_ops.fill_masked(canvas, hard, step.masked_content, seed) for seed in seeds]
                made = self._denoise_each(pipe, step, starts, mask, seeds, canvas.size, on_step)
                results += [image_ops.composite(canvas, result, mask) for result in made]
            return results

    def upscale(self, step: UpscaleStep, images: Images, on_step: StepCallback) -> Images:
        """Lanczos, or an upscaler model run tile by tile (then resized to the exact scale)."""
        images = [image_ops.to_rgb(im) for im in images]
        if step.model is None:
            on_step(1, 1)
        else:
            with self._on_device([step.model], "upscale", on_step, step.steps) as on_step:
                pipe = self.models.upscaler(step.model)
                images = [self._upscale_tiles(pipe, step, image, seed, on_step)
                          for image, seed in zip(images, step.seeds)]
        return [im.resize((step.width, step.height), PIL.Image.LANCZOS) if im.size != (step.width, step.height)
                else im for im in images]

    def _upscale_tiles(self, pipe, step: UpscaleStep, image, seed: int, on_step) -> PIL.Image.Image:
        """Enlarge the image (x4 or x2, as the model does) in overlapping tiles so large images fit in
        memory; tile k uses seed + k."""
        overlap = min(16, step.tile_size // 4)
        boxes = image_ops.tiles(image.size, step.tile_size, overlap)
        done, results = 0, []
        for k, box in enumerate(boxes):
            # This pipeline has only the older `callback(i, t, latents)`; it too can raise to stop.
            def report(i, t, latents, offset=done, box=box):
                on_step(offset + i + 1, step.steps * len(boxes),
                        latents=Latents(latents, step.model, box[2] - box[0], box[3] - box[1], pipe))

            tile = pipe(prompt="", image=image.crop(box), num_inference_steps=step.steps,
                        generator=_generator(seed + k), callback=report, callback_steps=1,
                        output_type="pil").images[0]
            done += step.steps
            x0, y0, x1, y1 = box
            factor = tile.width // (x1 - x0)
            results.append(((x0 * factor, y0 * factor, x1 * factor, y1 * factor), tile))
        return image_ops.blend_tiles((image.width * factor, image.height * factor), results, overlap * factor)

    # -- shared ----------------------------------------------------------------------------------

    def _guidance(self, step) -> dict:
        return {"controlnet_conditioning_scale": step.control_scale, "control_guidance_start": step.control_start,
                "control_guidance_end": step.control_end}

    def extra_file(self, kind: str, name: str, sha256: str) -> str:
        """The path of LoRA or embedding `name`, if it still holds the bytes the plan was made with."""
        return extra_file(self.extras, kind, name, sha256)

    def _inpaint_one(self, pipe, step: InpaintStep, image, mask, seeds, on_step) -> Images:
        work = (step.work_width, step.work_height)
        # Feather inward only, so every pixel outside the painted mask stays exactly as it was.
        feathered = PIL.ImageChops.darker(image_ops.blur_mask(mask, step.mask_blur), mask)
        if step.full_res:
            crop, crop_mask, box = image_ops.crop_for_inpaint(image, mask, step.full_res_padding, work)
            starts = [image_ops.fill_masked(crop, crop_mask, step.masked_content, seed) for seed in seeds]
            made = self._denoise_each(pipe, step, starts, crop_mask, seeds, work, on_step)
            return [image_ops.paste_back(image, result, feathered, box) for result in made]
        work_image = image.resize(work, PIL.Image.LANCZOS) if image.size != work else image
        work_mask = mask.resize(work, PIL.Image.NEAREST) if mask.size != work else mask
        starts = [image_ops.fill_masked(work_image, work_mask, step.masked_content, seed) for seed in seeds]
        made = self._denoise_each(pipe, step, starts, work_mask, seeds, work, on_step)
        return [image_ops.composite(image, result.resize(image.size, PIL.Image.LANCZOS), feathered)
                for result in made]

    def _denoise_each(self, pipe, step, starts: Images, mask, seeds: list[int], size, on_step) -> Images:
        """One inpainting call per start image (each may be filled differently), seeds in order."""
        calls = [([seed], {"image": start, "mask_image": mask, "strength": step.strength, "width": size[0],
                           "height": size[1]}) for start, seed in zip(starts, seeds)]
        return self._denoise(pipe, step, calls, on_step)

    def _denoise(self, pipe, step: DiffusionStep, calls: list[tuple[list[int], dict]], on_step) -> Images:
        """Run `calls` (seeds, extra pipeline arguments) with the step's sampler and prompts.

        Samplers whose noise follows one generator per image run each call as one batch; the others
        (whose noise is seeded once per call) run image by image so each image matches its seed alone.
        """
        if not SAMPLERS[step.sampler].batch_consistent:
            calls = [([seed], extra) for seeds, extra in calls for seed in seeds]
        loras = [(self.extra_file("lora", name, sha256), weight) for name, sha256, weight, _ in step.loras]
        embeddings = [(self.extra_file("embedding", name, sha256), name) for name, sha256 in step.embeddings]
        with applied_embeddings(pipe, embeddings), applied_loras(pipe, loras):
            return self._denoise_calls(pipe, step, calls, on_step)

    def _denoise_calls(self, pipe, step: DiffusionStep, calls, on_step) -> Images:
        images, done = [], 0
        for seeds, extra in calls:
            def report(p, i, t, tensors, offset=done, extra=extra):
                size = extra.get("width", step.width), extra.get("height", step.height)
                on_step(offset + i + 1, p.num_timesteps * len(calls),
                        latents=Latents(tensors["latents"], step.model, *size, p))
                return tensors

            scheduler, schedule_args = make_scheduler(dict(pipe.scheduler.config), step.sampler, step.schedule,
                                                      step.steps, step.model.family, seeds[0])
            pipe.scheduler = scheduler
            tile_vae(pipe, step.model.family, extra.get("width", step.width), extra.get("height", step.height))
            with seeded_global_rng(seeds[0], self.models.device):
                result = pipe(prompt=[step.prompt] * len(seeds), num_inference_steps=step.steps,
                              generator=[_generator(s) for s in seeds], callback_on_step_end=report,
                              output_type="pil", **prompting(step, len(seeds)), **extra, **schedule_args)
            done += pipe.num_timesteps
            images += result.images
        return images
