"""Loaded models, kept in memory so consecutive jobs on one model never reload it. How each family loads is
the family's (`pipelines.image_models`, `control`, `video_models`, `learned_interpolation`); the cache holds,
evicts and calls them.

Least recently used pipelines are dropped first once more than `capacity` are loaded, but never one a job
holds pinned (`pinned`): a job suspended mid-node while another takes its turn on the device
(pipelines.turns) keeps its pipeline, and the cache may hold more than `capacity` until it ends. The cache
is keyed by everything that decides what is loaded (`ModelCache.key`): the weights' content hash, the
family (which pipeline class reads them) and, for a single file, its config folder. Two catalogue ids
naming the same weights the same way share one load; the same file declared another way does not.
"""
from __future__ import annotations

import collections
import contextlib
import gc
import logging
import os
import pathlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import torch
from diffusers import DiffusionPipeline, StableVideoDiffusionPipeline

from pipelines.control import load_controlnet, load_upscaler
from pipelines.errors import AtelierError
from pipelines.image_models import check_task, load_image_model, task_pipeline
from pipelines.learned_interpolation import FlowNet, load_interpolator_model
from pipelines.model_sources import ModelSources
from pipelines.placement import family_dtype, place
from pipelines.preview import load_preview_decoder
from pipelines.plan import ModelRef
from pipelines.video_models import animatediff_from, load_motion_adapter, load_svd

logger = logging.getLogger(__name__)

# diffusers and accelerate patch torch.nn for the length of a load (init_empty_weights swaps
# Module.register_parameter, no_init_weights swaps torch.nn.init), and restore what they found on the
# way out. Two loads at once in one process therefore leave parameters on the meta device or
# uninitialised, for good. Every cache in the process takes this one lock.
LOADING = threading.Lock()


class ModelCache:
    """Loads models for ModelRefs onto one device, with their family's loader, and keeps the last `capacity`.

    Args:
        models_dir: where relative model paths and the demo models live.
        device, dtype: where and in what precision the models run.
        capacity: how many loaded models stay.
        config_folders: model id -> diffusers config folder, for single-file checkpoints.
        on_load: called as on_load(seconds, family) after each image model is loaded.
        offload: the catalogue ids of the models to run with model CPU offload on a GPU (`offload = true`).
        preview_vaes: model id -> the tiny decoder (TAESD) its live previews are drawn with (`preview_vae`).
    """

    def __init__(self, models_dir: str | os.PathLike, device: torch.device, dtype: torch.dtype,
                 capacity: int = 2, config_folders: dict[str, str] | None = None,
                 on_load: Callable[[float, str], None] | None = None, offload: frozenset[str] = frozenset(),
                 preview_vaes: dict[str, str] | None = None):
        self.models_dir = pathlib.Path(models_dir)
        self.device = device
        self.dtype = dtype
        self.capacity = max(1, capacity)
        self.config_folders = config_folders if config_folders is not None else {}
        self.sources = ModelSources(self.models_dir, self.config_folders)
        self.on_load = on_load
        self.offload = offload
        self.preview_vaes = preview_vaes if preview_vaes is not None else {}
        self._preview_decoders: dict[str, torch.nn.Module | None] = {}   # preview_vae source -> loaded (or None)
        self.loads = 0                     # how many times weights were read from disk
        # key(model) -> task -> what runs it; the first entry is the loaded model, the others share its modules
        self._models: collections.OrderedDict[tuple, dict[str, object]] = collections.OrderedDict()
        self._pins: collections.Counter[tuple] = collections.Counter()     # key -> jobs using it now
        self._lock = LOADING

    def key(self, model: ModelRef) -> tuple[str, str, str]:
        """What decides what loading `model` gives: its weights (content hash), its family and, for a single
        file, the config folder the catalogue gives it."""
        return model.hash, model.family, str(self.config_folders.get(model.id, ""))

    def get(self, model: ModelRef, task: str = "txt2img", control: ModelRef | None = None) -> DiffusionPipeline:
        """The pipeline for `task` ("txt2img", "img2img" or "inpaint") on the image model `model`, steered by the
        ControlNet `control` if given, loading what is needed."""
        with self._lock:
            tasks = self._held(model, "txt2img", self._image_model)
            check_task(tasks["txt2img"], model, task)
            name = task if control is None else f"{task}+{control.hash}"
            if name not in tasks:
                controlnet = None if control is None else self._read(
                    control, lambda c, sources, device, dtype: load_controlnet(c, sources, device,
                                                                               self.dtype_for(model.family),
                                                                               model.family))
                tasks[name] = task_pipeline(tasks["txt2img"], model, task, controlnet)
            return tasks[name]

    def upscaler(self, model: ModelRef) -> DiffusionPipeline:
        """The upscaler pipeline for `model`, loading it if needed."""
        with self._lock:
            return self._held(model, "upscale", lambda m: self._read(m, load_upscaler))["upscale"]

    def video(self, model: ModelRef) -> StableVideoDiffusionPipeline:
        """The Stable Video Diffusion pipeline for `model`, loading it if needed."""
        with self._lock:
            return self._held(model, "img2vid", lambda m: self._read(m, load_svd))["img2vid"]

    def animatediff(self, model: ModelRef, adapter: ModelRef):
        """The AnimateDiff pipeline that animates `model` (its txt2img pipeline, loaded if needed) with the
        motion adapter `adapter`; it shares the model's text encoder and VAE."""
        with self._lock:
            tasks = self._held(model, "txt2img", self._image_model)
            name = f"txt2vid+{adapter.hash}"
            if name not in tasks:
                motion = self._read(adapter, load_motion_adapter)
                try:
                    tasks[name] = animatediff_from(tasks["txt2img"], motion).to(self.device)
                except ValueError as e:
                    raise AtelierError(f"Motion adapter {adapter.id!r} cannot animate {model.id!r}: {e}",
                                       code="adapter_mismatch", field="motion_adapter") from None
            return tasks[name]

    def interpolator(self, model: ModelRef) -> FlowNet:
        """The learned frame interpolator for `model` (a RIFE-family folder), loading it if needed."""
        with self._lock:
            return self._held(model, "interpolate", lambda m: self._read(m, load_interpolator_model))["interpolate"]

    @contextlib.contextmanager
    def pinned(self, models: Iterable[ModelRef]) -> Iterator[None]:
        """Within the block, `models` are not dropped to make room (loaded or not yet); past the block, the
        least recently used are dropped again until `capacity` are held."""
        keys = [self.key(model) for model in models]
        with self._lock:
            self._pins.update(keys)
        try:
            yield
        finally:
            with self._lock:
                self._pins.subtract(keys)
                self._pins = +self._pins           # drops the keys no job pins any more
                self._evict()

    def _held(self, model: ModelRef, task: str, load: Callable[[ModelRef], object]) -> dict[str, object]:
        """The task entries of `model`, loading it as `task` with `load` if it is not held; the most recently
        used last, the least recently used dropped past `capacity`. Called with the lock held."""
        key = self.key(model)
        if key not in self._models:
            self._models[key] = {task: load(model)}
            self._evict(keep=key)
        self._models.move_to_end(key)
        return self._models[key]

    def preview_decoder(self, model: ModelRef) -> torch.nn.Module | None:
        """The tiny decoder (TAESD) the catalogue gives `model` for live previews, loaded once; None when it
        gives none, or when it cannot be loaded (logged once: previews then use the family's projection)."""
        source = self.preview_vaes.get(model.id, "")
        if not source:
            return None
        with self._lock:
            if source not in self._preview_decoders:
                try:
                    self._preview_decoders[source] = load_preview_decoder(source, self.models_dir, self.device,
                                                                          self.dtype)
                except (OSError, ValueError) as e:
                    logger.warning("model cache: preview decoder %s of %s not loaded (%s); previews use the "
                                   "latent-to-RGB projection", source, model.id, e)
                    self._preview_decoders[source] = None
            return self._preview_decoders[source]

    def dtype_for(self, family: str) -> torch.dtype:
        """The dtype `family`'s models run in here (its declared CUDA dtype on a GPU)."""
        return family_dtype(family, self.device, self.dtype)

    def _read(self, model: ModelRef, loader) -> object:
        """`loader(model, sources, device, dtype)`: weights read from disk once more."""
        logger.info("model cache: loading %s %s (%s) on %s", model.family, model.id, model.source, self.device)
        loaded = loader(model, self.sources, self.device, self.dtype_for(model.family))
        self.loads += 1
        return loaded

    def _image_model(self, model: ModelRef) -> DiffusionPipeline:
        started = time.perf_counter()
        pipe = place(self._read(model, load_image_model), model.id, self.device, model.id in self.offload)
        if self.on_load is not None:
            self.on_load(time.perf_counter() - started, model.family)
        return pipe

    def _evict(self, keep: tuple | None = None) -> None:
        """Drop the least recently used models that no job pins (nor `keep`, just loaded) past `capacity`."""
        while len(self._models) > self.capacity:
            dropped = next((key for key in self._models if not self._pins[key] and key != keep), None)
            if dropped is None:
                logger.info("model cache: %d models held, over %d, while jobs use them", len(self._models),
                            self.capacity)
                return
            del self._models[dropped]
            logger.info("model cache: dropped %s", dropped)
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
