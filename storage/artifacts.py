"""Writing artifacts: PNG encoding with metadata, storing by hash, lineage edges, and reading back.

Each PNG carries two text chunks: `parameters` (AUTOMATIC1111's infotext) and `atelier` (the plan as
JSON); each MP4 carries the same two as metadata keys (storage/video.py). The bytes depend only on the
pictures and those texts, so a replay on the same machine and library versions gives the same file,
and therefore the same artifact id.
"""
from __future__ import annotations

import io
import json
import time

import PIL.Image
import PIL.PngImagePlugin

from storage.blobs import BlobStore
from storage.db import database
from storage.models import Artifact, ArtifactOwner, Lineage, User
from storage.video import MP4_MIME, mp4_metadata


def encode_png(image: PIL.Image.Image, texts: dict[str, str]) -> bytes:
    """PNG bytes of `image` with one tEXt/iTXt chunk per entry of `texts`."""
    info = PIL.PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def png_texts(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG file."""
    with PIL.Image.open(io.BytesIO(data)) as image:
        image.load()
        return dict(getattr(image, "text", {}))


def store_artifact(blobs: BlobStore, data: bytes, *, owner: User, kind: str, mime: str, suffix: str,
                   width: int = 0, height: int = 0, job=None, plan_hash: str = "", step_id: str = "",
                   output_index: int = 0, seed: int | None = None, frames: int = 0, fps: float = 0.0,
                   parents: tuple[tuple[str, str], ...] = ()) -> Artifact:
    """Store `data` as a blob and record it as held by `owner`; returns the Artifact (the existing one
    if these exact bytes were stored before, by anyone). `parents` are (artifact id, relation) lineage edges."""
    key = blobs.put(data, suffix)
    artifact_id = key[:64]
    with database.atomic():
        artifact = Artifact.get_or_none(Artifact.id == artifact_id)
        if artifact is None:
            artifact = Artifact.create(id=artifact_id, owner=owner, kind=kind, mime=mime, size=len(data),
                                       width=width, height=height, blob_key=key, job=job, plan_hash=plan_hash,
                                       step_id=step_id, output_index=output_index, seed=seed, frames=frames,
                                       fps=fps)
        ArtifactOwner.insert(artifact=artifact_id, owner=owner, created_at=time.time()).on_conflict_ignore().execute()
        for parent_id, relation in parents:
            if parent_id != artifact_id:
                Lineage.insert(child=artifact_id, parent=parent_id, relation=relation).on_conflict_ignore().execute()
    return artifact


def lineage_of(artifact: Artifact) -> tuple[list[dict], list[dict]]:
    """(parents, children) of an artifact, each as {"artifact_id", "relation"}."""
    parents = [{"artifact_id": e.parent_id, "relation": e.relation}
               for e in Lineage.select().where(Lineage.child == artifact.id)]
    children = [{"artifact_id": e.child_id, "relation": e.relation}
                for e in Lineage.select().where(Lineage.parent == artifact.id)]
    return parents, children


def recipe_of(blobs: BlobStore, artifact: Artifact) -> dict:
    """The `atelier` text of a stored PNG or MP4, parsed: plan, step, index, environment ({} if none)."""
    if artifact.mime == "image/png":
        texts = png_texts(blobs.get(artifact.blob_key))
    elif artifact.mime == MP4_MIME:
        texts = mp4_metadata(blobs.get(artifact.blob_key))
    else:
        texts = {}
    return json.loads(texts["atelier"]) if "atelier" in texts else {}


def held_by(user: User):
    """A condition on Artifact: `user` holds it (admins hold everything)."""
    if user.role == "admin":
        return True
    return Artifact.id.in_(ArtifactOwner.select(ArtifactOwner.artifact).where(ArtifactOwner.owner == user))


def find_artifact(user: User, artifact_id) -> Artifact | None:
    """The artifact with `artifact_id` if `user` may see it; None otherwise (someone else's looks missing)."""
    if not isinstance(artifact_id, str) or not artifact_id:
        return None
    return Artifact.get_or_none((Artifact.id == artifact_id) & held_by(user))


def recent_artifacts(user: User, limit: int = 100) -> list[Artifact]:
    """The artifacts `user` holds, newest first (by when they got them); a video's poster is not listed
    apart from its video."""
    return list(Artifact.select(Artifact).join(ArtifactOwner)
                .where((ArtifactOwner.owner == user) & (Artifact.kind != "poster"))
                .order_by(ArtifactOwner.created_at.desc(), Artifact.output_index).limit(limit))
