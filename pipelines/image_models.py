"""How the families' models load (`pipelines.families` names the pipeline class of each task): one pipeline
read from a demo, a folder, a single file or a GGUF transformer (with a config folder) or the hub, and the task
pipelines (img2img, inpaint, edit, ControlNet, image to video) that share its modules."""
from __future__ import annotations

import json
import logging
import pathlib

import diffusers
import torch
from diffusers import ControlNetModel, DiffusionPipeline

from pipelines.demo_model import ensure_demo_model
from pipelines.errors import AtelierError
from pipelines.families import FAMILIES
from pipelines.model_facts import checkpoint_family
from pipelines.model_sources import ModelSources
from pipelines.plan import ModelRef

logger = logging.getLogger(__name__)


def pipeline_class(family: str, task: str | None = None, control: bool = False) -> type[DiffusionPipeline]:
    """The diffusers class its family declares for `task` (None: the family's first task, the one its models
    load as)."""
    declared = FAMILIES[family]
    tasks = declared.control_tasks if control else declared.tasks
    return getattr(diffusers, tasks[task] if task is not None else next(iter(declared.tasks.values())))


def load_image_model(model: ModelRef, sources: ModelSources, device: torch.device,
                     dtype: torch.dtype) -> DiffusionPipeline:
    """`model`'s pipeline for its family's first task (txt2img, or txt2vid for a video family), in `dtype` on the
    CPU (the cache places it on `device`: `pipelines.placement`); AtelierError saying what to fix when it
    cannot be read."""
    cls = pipeline_class(model.family)
    kind = model.source.split(":", 1)[0]
    try:
        if kind in ("demo", "folder"):
            folder = ensure_demo_model(sources.demo_dir, model.id) if kind == "demo" else sources.location(model)
            cls = _saved_task_class(folder, model.family) or cls
            pipe = cls.from_pretrained(folder, local_files_only=True, dtype=dtype)
        elif kind == "file":
            config = sources.config(model)
            if config is None:
                raise AtelierError(f"Model {model.id!r} is a single file; give it `config = <diffusers "
                                   "folder>` in configs/models.toml so it loads offline.",
                                   code="model_config_missing", field="model")
            pipe = _from_single_file(cls, model, sources, config, dtype)
        elif kind == "gguf":
            pipe = _with_gguf_transformer(cls, model, sources, dtype)
        else:
            pipe = cls.from_pretrained(model.source.split(":", 1)[1], dtype=dtype)
    except AtelierError:
        raise
    except (OSError, ValueError, EnvironmentError) as e:
        logger.exception("model cache: loading %s failed", model.id)
        raise AtelierError(f"Could not load model {model.id!r} from {model.source}: {e}",
                           code="model_load_failed", field="model") from e
    if getattr(pipe, "safety_checker", None) is not None:
        pipe.safety_checker = None
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _from_single_file(cls, model: ModelRef, sources: ModelSources, config, dtype: torch.dtype):
    """`cls` read from `model`'s single file with the diffusers `config` folder. A file of another family
    than the catalogue says fails inside diffusers with a bare KeyError or a shape error; that becomes a
    message naming the model, the declared family and what the file holds."""
    path = sources.location(model)
    try:
        return cls.from_single_file(path, config=str(config), dtype=dtype)
    except (KeyError, RuntimeError, ValueError) as e:
        holds = checkpoint_family(path)
        if holds == model.family:
            raise
        found = f"an {holds} checkpoint" if holds != "unknown" else "no checkpoint layout Atelier knows"
        raise AtelierError(f"Model {model.id!r} is declared family = {model.family!r} in configs/models.toml, "
                           f"but its file {path.name} holds {found}. Give it the family of its file (and a config "
                           "folder of that family).", code="family_mismatch", field="model") from e


def _saved_task_class(folder, family: str) -> type[DiffusionPipeline] | None:
    """The class a diffusers folder was saved as, when its family declares it for a task: a FLUX.1 Kontext folder
    (saved as FluxKontextPipeline) loads as what it is, with whatever components that class has, and the family's
    other tasks share its modules."""
    try:
        saved = json.loads((pathlib.Path(folder) / "model_index.json").read_text())["_class_name"]
    except (OSError, ValueError, KeyError):
        return None
    return getattr(diffusers, saved) if saved in FAMILIES[family].tasks.values() else None


def _with_gguf_transformer(cls, model: ModelRef, sources: ModelSources, dtype: torch.dtype):
    """`cls` read from the config folder with its transformer from `model`'s GGUF file."""
    from pipelines.gguf import gguf_architecture, load_gguf_transformer

    path, config = sources.location(model), sources.config(model)
    if config is None:
        raise AtelierError(f"Model {model.id!r} is a GGUF transformer; give it `config = <diffusers folder>` in "
                           "configs/models.toml holding the rest of the pipeline.", code="model_config_missing",
                           field="model")
    try:
        transformer = load_gguf_transformer(model.family, path, config, dtype)
    except ValueError as e:
        raise AtelierError(f"Model {model.id!r}: {e}", code="gguf_mismatch", field="model") from e
    logger.info("model cache: %s transformer from GGUF (%s)", model.id, gguf_architecture(path))
    return cls.from_pretrained(config, transformer=transformer, local_files_only=True, dtype=dtype)


def check_task(loaded: DiffusionPipeline, model: ModelRef, task: str) -> None:
    """Refuse a `task` the loaded model cannot run: an inpainting model (a 9-channel UNet) runs only "inpaint"
    (the compiler refuses it first when the catalogue's facts know the model)."""
    unet = getattr(loaded, "unet", None)
    if unet is not None and unet.config.in_channels != 4 and task != "inpaint":
        raise AtelierError(f"Model {model.id!r} is an inpainting model; use it to inpaint or outpaint.",
                           code="inpainting_model", field="model")


def task_pipeline(loaded: DiffusionPipeline, model: ModelRef, task: str,
                  controlnet: ControlNetModel | None = None) -> DiffusionPipeline:
    """The `task` pipeline (a task its family declares) sharing `loaded`'s modules, steered by `controlnet` if
    given."""
    if controlnet is None:
        pipe = pipeline_class(model.family, task).from_pipe(loaded)
    else:
        pipe = pipeline_class(model.family, task, control=True).from_pipe(loaded, controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    return pipe
