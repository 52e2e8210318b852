"""Content hashes of model weights, so a plan names exactly the weights it was made with.

- "folder:" sources: sha256 over each file's relative path and sha256 (config and weights).
- "file:" sources: sha256 of the file (AUTOMATIC1111's `Model hash` is its first 10 hex digits).
- "demo" sources: sha256 of the builder's recipe. The demo builder is seeded, so a recipe always
  builds the same weights (a test checks it); hashing the recipe lets the web process quote
  without building anything.
- "hub:" sources: the hub id; the weights are whatever the hub serves for it.

Hashing a large checkpoint takes seconds, so results are kept per (path, size, mtime).
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import threading

from configs import ModelEntry
from pipelines.errors import AtelierError

DEMO_RECIPE_VERSION = 1
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def demo_hash(model_id: str) -> str:
    return hashlib.sha256(f"atelier-demo:{model_id}:v{DEMO_RECIPE_VERSION}".encode()).hexdigest()


class ModelHasher:
    """Callable: `hasher(entry) -> "sha256:<hex>"`, with relative paths resolved under `models_dir`."""

    def __init__(self, models_dir: str | os.PathLike):
        self.models_dir = pathlib.Path(models_dir)
        self._known: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def location(self, entry: ModelEntry) -> pathlib.Path:
        return self._under(entry.source_location)

    def _under(self, location: str) -> pathlib.Path:
        path = pathlib.Path(location).expanduser()
        return path if path.is_absolute() else self.models_dir / path

    def __call__(self, entry: ModelEntry) -> str:
        kind = entry.source_kind
        if kind == "demo":
            return "sha256:" + demo_hash(entry.id)
        if kind == "hub":
            return "hub:" + entry.source_location
        path = self.location(entry)
        if not path.exists():
            raise AtelierError(f"Model {entry.id!r} is configured at {path}, which does not exist; "
                               "fix its source in configs/models.toml.", code="model_missing", field="model")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if kind == "folder" else [path]
        if kind == "gguf":
            # The GGUF file holds the transformer only; the text encoders and VAE are the config folder's.
            config = self._under(entry.config)
            files += sorted(p for p in config.rglob("*") if p.is_file())
        key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        with self._lock:
            if key in self._known:
                return self._known[key]
        if kind == "file":
            value = file_sha256(path)
        else:
            digest = hashlib.sha256()
            for p in files:
                name = p.relative_to(path).as_posix() if p.is_relative_to(path) else f"config/{p.relative_to(config)}"
                digest.update(f"{name}\0{file_sha256(p)}\n".encode())
            value = digest.hexdigest()
        with self._lock:
            self._known[key] = "sha256:" + value
        return "sha256:" + value
