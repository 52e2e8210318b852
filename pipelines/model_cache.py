"""Loaded pipelines, kept in memory so consecutive jobs on one model never reload it.

Least recently used pipelines are dropped first once more than `capacity` are loaded. The cache
is keyed by everything that decides what is loaded (`ModelCache.key`): the weights' content hash, the
family (which pipeline class reads them) and, for a single file, its config folder. Two catalogue ids
naming the same weights the same way share one load; the same file declared another way does not.
"""
from __future__ import annotations

import collections
import gc
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable

import torch
from diffusers import (ControlNetModel, DiffusionPipeline, MotionAdapter, StableDiffusionControlNetImg2ImgPipeline,
                       StableDiffusionControlNetPipeline, StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline,
                       StableDiffusionPipeline, StableDiffusionXLControlNetImg2ImgPipeline,
                       StableDiffusionXLControlNetPipeline, StableDiffusionXLImg2ImgPipeline,
                       StableDiffusionXLInpaintPipeline, StableDiffusionXLPipeline, StableVideoDiffusionPipeline)

from pipelines.control import ensure_demo_controlnet, ensure_demo_latent_upscaler, ensure_demo_upscaler
from pipelines.demo_model import ensure_demo_model
from pipelines.errors import AtelierError
from pipelines.learned_interpolation import FlowNet, ensure_demo_interpolator, load_interpolator
from pipelines.model_facts import checkpoint_family
from pipelines.plan import ModelRef
from pipelines.video_models import animatediff_from, ensure_demo_motion_adapter, ensure_demo_svd

logger = logging.getLogger(__name__)

PIPELINE_CLASSES = {"sd15": StableDiffusionPipeline, "sdxl": StableDiffusionXLPipeline}
# family -> task -> pipeline class; task pipelines share the loaded model's modules (from_pipe).
TASK_CLASSES = {
    "sd15": {"txt2img": StableDiffusionPipeline, "img2img": StableDiffusionImg2ImgPipeline,
             "inpaint": StableDiffusionInpaintPipeline},
    "sdxl": {"txt2img": StableDiffusionXLPipeline, "img2img": StableDiffusionXLImg2ImgPipeline,
             "inpaint": StableDiffusionXLInpaintPipeline},
}
DEMO_UPSCALERS = {"demo-upscaler-x4": ensure_demo_upscaler, "demo-latent-upscaler-x2": ensure_demo_latent_upscaler}
CONTROL_CLASSES = {
    "sd15": {"txt2img": StableDiffusionControlNetPipeline, "img2img": StableDiffusionControlNetImg2ImgPipeline},
    "sdxl": {"txt2img": StableDiffusionXLControlNetPipeline, "img2img": StableDiffusionXLControlNetImg2ImgPipeline},
}


class ModelCache:
    """Loads pipelines for ModelRefs onto one device and keeps the last `capacity` of them.

    Args:
        models_dir: where relative model paths and the demo models live.
        device, dtype: where and in what precision the pipelines run.
        capacity: how many pipelines stay loaded.
        config_folders: model id -> diffusers config folder, for single-file checkpoints.
    """

    def __init__(self, models_dir: str | os.PathLike, device: torch.device, dtype: torch.dtype,
                 capacity: int = 2, config_folders: dict[str, str] | None = None,
                 on_load: Callable[[float, str], None] | None = None):
        self.models_dir = pathlib.Path(models_dir)
        self.device = device
        self.dtype = dtype
        self.capacity = max(1, capacity)
        self.config_folders = config_folders or {}
        self.on_load = on_load             # on_load(seconds, family) after each pipeline load
        self.loads = 0                     # how many times weights were read from disk
        # key(model) -> task -> pipeline; the "txt2img" entry is the loaded one, the others share its modules
        self._pipelines: collections.OrderedDict[tuple, dict[str, DiffusionPipeline]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: ModelRef, task: str = "txt2img", control: ModelRef | None = None) -> DiffusionPipeline:
        """The pipeline for `task` ("txt2img", "img2img" or "inpaint") on `model`, steered by the ControlNet
        `control` if given, loading what is needed."""
        key = self.key(model)
        with self._lock:
            if key in self._pipelines:
                self._pipelines.move_to_end(key)
            else:
                self._pipelines[key] = {"txt2img": self._load(model)}
                self._evict()
            tasks = self._pipelines[key]
            if tasks["txt2img"].unet.config.in_channels != 4 and task != "inpaint":
                raise AtelierError(f"Model {model.id!r} is an inpainting model; use it to inpaint or outpaint.",
                                   code="inpainting_model", field="model")
            name = task if control is None else f"{task}+{control.hash}"
            if name not in tasks:
                if control is None:
                    tasks[name] = TASK_CLASSES[model.family][task].from_pipe(tasks["txt2img"])
                else:
                    tasks[name] = CONTROL_CLASSES[model.family][task].from_pipe(
                        tasks["txt2img"], controlnet=self._load_controlnet(control))
                tasks[name].set_progress_bar_config(disable=True)
            return tasks[name]

    def key(self, model: ModelRef) -> tuple[str, str, str]:
        """What decides what loading `model` gives: its weights (content hash), its family and, for a single
        file, the config folder the catalogue gives it."""
        return model.hash, model.family, str(self.config_folders.get(model.id, ""))

    def _load_controlnet(self, control: ModelRef) -> ControlNetModel:
        kind = control.source.split(":", 1)[0]
        logger.info("model cache: loading ControlNet %s (%s)", control.id, control.source)
        if kind == "demo":
            base = ensure_demo_model(self.models_dir / "demo", "demo-sd15")
            folder = ensure_demo_controlnet(self.models_dir / "demo", base)
        elif kind == "folder":
            folder = self._location(control)
        else:
            raise AtelierError(f"ControlNet {control.id!r}: only demo and folder: sources are supported.",
                               code="controlnet_source", field="control_model")
        self.loads += 1
        return ControlNetModel.from_pretrained(folder, dtype=self.dtype).to(self.device)

    def upscaler(self, model: ModelRef) -> DiffusionPipeline:
        """The upscaler pipeline for `model` (the diffusers x4 upscaler or x2 latent upscaler family; the
        folder's model_index.json says which), loading it if needed."""
        key = self.key(model)
        with self._lock:
            if key not in self._pipelines:
                kind = model.source.split(":", 1)[0]
                logger.info("model cache: loading upscaler %s (%s)", model.id, model.source)
                if kind == "demo":
                    build = DEMO_UPSCALERS.get(model.id)
                    if build is None:
                        raise AtelierError(f"No demo upscaler {model.id!r}; demo upscalers are {sorted(DEMO_UPSCALERS)}.",
                                           code="upscaler_source", field="upscaler")
                    folder = build(self.models_dir / "demo")
                elif kind == "folder":
                    folder = self._location(model)
                else:
                    raise AtelierError(f"Upscaler {model.id!r}: only demo and folder: sources are supported.",
                                       code="upscaler_source", field="upscaler")
                pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=self.dtype)
                pipe.set_progress_bar_config(disable=True)
                self.loads += 1
                self._pipelines[key] = {"upscale": pipe.to(self.device)}
                self._evict()
            self._pipelines.move_to_end(key)
            return self._pipelines[key]["upscale"]

    def video(self, model: ModelRef) -> StableVideoDiffusionPipeline:
        """The Stable Video Diffusion pipeline for `model`, loading it if needed."""
        key = self.key(model)
        with self._lock:
            if key not in self._pipelines:
                folder = self._folder(model, ensure_demo_svd, "model")
                logger.info("model cache: loading video model %s (%s)", model.id, model.source)
                pipe = self._from_pretrained(StableVideoDiffusionPipeline, model, folder)
                if self.device.type == "cuda":
                    # Feed-forward layers in chunks: a little slower, much less memory for long videos.
                    pipe.unet.enable_forward_chunking()
                self._pipelines[key] = {"img2vid": pipe.to(self.device)}
                self._evict()
            self._pipelines.move_to_end(key)
            return self._pipelines[key]["img2vid"]

    def animatediff(self, model: ModelRef, adapter: ModelRef):
        """The AnimateDiff pipeline that animates `model` (its txt2img pipeline, loaded if needed) with the
        motion adapter `adapter`; it shares the model's text encoder and VAE."""
        base = self.get(model)
        with self._lock:
            tasks = self._pipelines[self.key(model)]
            name = f"txt2vid+{adapter.hash}"
            if name not in tasks:
                folder = self._folder(adapter, ensure_demo_motion_adapter, "motion_adapter")
                logger.info("model cache: loading motion adapter %s (%s)", adapter.id, adapter.source)
                motion = MotionAdapter.from_pretrained(folder, local_files_only=True, dtype=self.dtype)
                self.loads += 1
                try:
                    tasks[name] = animatediff_from(base, motion.to(self.device)).to(self.device)
                except ValueError as e:
                    raise AtelierError(f"Motion adapter {adapter.id!r} cannot animate {model.id!r}: {e}",
                                       code="adapter_mismatch", field="motion_adapter") from None
            return tasks[name]

    def interpolator(self, model: ModelRef) -> FlowNet:
        """The learned frame interpolator for `model` (a RIFE-family folder), loading it if needed."""
        key = self.key(model)
        with self._lock:
            if key not in self._pipelines:
                folder = self._folder(model, ensure_demo_interpolator, "method")
                logger.info("model cache: loading interpolator %s (%s)", model.id, model.source)
                try:
                    net = load_interpolator(folder, self.device, self.dtype)
                except (OSError, ValueError, KeyError, RuntimeError) as e:
                    raise AtelierError(f"Could not load interpolator {model.id!r} from {model.source}: {e}",
                                       code="model_load_failed", field="method") from e
                self.loads += 1
                self._pipelines[key] = {"interpolate": net}
                self._evict()
            self._pipelines.move_to_end(key)
            return self._pipelines[key]["interpolate"]

    def _folder(self, model: ModelRef, build_demo, field: str) -> pathlib.Path:
        """Where a demo or folder: model lives (the demo is built there the first time)."""
        kind = model.source.split(":", 1)[0]
        if kind == "demo":
            return build_demo(self.models_dir / "demo")
        if kind == "folder":
            return self._location(model)
        raise AtelierError(f"{model.id!r}: video models and interpolators load from demo or folder: sources only; download it "
                           "into a folder and give source = \"folder:PATH\".", code="model_source", field=field)

    def _from_pretrained(self, cls, model: ModelRef, folder: pathlib.Path):
        try:
            pipe = cls.from_pretrained(folder, local_files_only=True, dtype=self.dtype)
        except (OSError, ValueError) as e:
            logger.exception("model cache: loading %s failed", model.id)
            raise AtelierError(f"Could not load model {model.id!r} from {model.source}: {e}",
                               code="model_load_failed", field="model") from e
        pipe.set_progress_bar_config(disable=True)
        self.loads += 1
        return pipe

    def _evict(self) -> None:
        while len(self._pipelines) > self.capacity:
            dropped, _ = self._pipelines.popitem(last=False)
            logger.info("model cache: dropped %s", dropped)
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _location(self, model: ModelRef) -> pathlib.Path:
        path = pathlib.Path(model.source.split(":", 1)[1]).expanduser()
        return path if path.is_absolute() else self.models_dir / path

    def _from_single_file(self, cls, model: ModelRef, config: pathlib.Path) -> DiffusionPipeline:
        """`cls` read from `model`'s single file with the diffusers `config` folder. A file of another family
        than the catalogue says fails inside diffusers with a bare KeyError or a shape error; that becomes a
        message naming the model, the declared family and what the file holds."""
        path = self._location(model)
        try:
            return cls.from_single_file(path, config=str(config), dtype=self.dtype)
        except (KeyError, RuntimeError, ValueError) as e:
            holds = checkpoint_family(path)
            if holds == model.family:
                raise
            found = f"an {holds} checkpoint" if holds != "unknown" else "no checkpoint layout Atelier knows"
            raise AtelierError(f"Model {model.id!r} is declared family = {model.family!r} in configs/models.toml, "
                               f"but its file {path.name} holds {found}. Give it the family of its file (and a config "
                               "folder of that family).", code="family_mismatch", field="model") from e

    def _load(self, model: ModelRef) -> DiffusionPipeline:
        started = time.perf_counter()
        cls = PIPELINE_CLASSES[model.family]
        kind = model.source.split(":", 1)[0]
        logger.info("model cache: loading %s (%s) on %s", model.id, model.source, self.device)
        try:
            if kind == "demo":
                folder = ensure_demo_model(self.models_dir / "demo", model.id)
                pipe = cls.from_pretrained(folder, local_files_only=True, dtype=self.dtype)
            elif kind == "folder":
                pipe = cls.from_pretrained(self._location(model), local_files_only=True, dtype=self.dtype)
            elif kind == "file":
                config = self.config_folders.get(model.id)
                if not config:
                    raise AtelierError(f"Model {model.id!r} is a single file; give it `config = <diffusers "
                                       "folder>` in configs/models.toml so it loads offline.",
                                       code="model_config_missing", field="model")
                config = pathlib.Path(config).expanduser()
                config = config if config.is_absolute() else self.models_dir / config
                pipe = self._from_single_file(cls, model, config)
            else:
                pipe = cls.from_pretrained(model.source.split(":", 1)[1], dtype=self.dtype)
        except AtelierError:
            raise
        except (OSError, ValueError, EnvironmentError) as e:
            logger.exception("model cache: loading %s failed", model.id)
            raise AtelierError(f"Could not load model {model.id!r} from {model.source}: {e}",
                               code="model_load_failed", field="model") from e
        if getattr(pipe, "safety_checker", None) is not None:
            pipe.safety_checker = None
        pipe.set_progress_bar_config(disable=True)
        self.loads += 1
        pipe = pipe.to(self.device)
        if self.on_load is not None:
            self.on_load(time.perf_counter() - started, model.family)
        return pipe
