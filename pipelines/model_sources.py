"""Where a catalogue model's files are, for the family loaders: a demo model built on first use under the
models folder, a folder, or a single file read with a diffusers config folder."""
from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.errors import AtelierError
from pipelines.plan import ModelRef


@dataclass(frozen=True)
class ModelSources:
    """models_dir: where relative paths and the demo models live; config_folders: model id -> the diffusers
    config folder of a single-file checkpoint."""

    models_dir: pathlib.Path
    config_folders: dict[str, str] = field(default_factory=dict)

    @property
    def demo_dir(self) -> pathlib.Path:
        return self.models_dir / "demo"

    def location(self, model: ModelRef) -> pathlib.Path:
        """The folder or file a folder: or file: source names, relative paths under `models_dir`."""
        path = pathlib.Path(model.source.split(":", 1)[1]).expanduser()
        return path if path.is_absolute() else self.models_dir / path

    def config(self, model: ModelRef) -> pathlib.Path | None:
        """The config folder the catalogue gives a single file (None if it gives none)."""
        configured = self.config_folders.get(model.id)
        if not configured:
            return None
        path = pathlib.Path(configured).expanduser()
        return path if path.is_absolute() else self.models_dir / path

    def folder(self, model: ModelRef, build_demo: Callable[[pathlib.Path], pathlib.Path], field: str,
               what: str) -> pathlib.Path:
        """Where a demo or folder: model lives (a demo is built there the first time); `what` names the kind of
        model in the message for other sources."""
        kind = model.source.split(":", 1)[0]
        if kind == "demo":
            return build_demo(self.demo_dir)
        if kind == "folder":
            return self.location(model)
        raise AtelierError(f"{model.id!r}: {what} load from demo or folder: sources only; download it into a folder "
                           "and give source = \"folder:PATH\".", code="model_source", field=field)
