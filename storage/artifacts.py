"""Writing artifacts: PNG encoding with metadata, storing by hash, lineage edges, and reading back
what each holder may see.

Each PNG carries two text chunks: `parameters` (AUTOMATIC1111's infotext) and `atelier` (the plan as
JSON); each MP4 carries the same two as metadata keys (storage/video.py). The bytes depend only on the
pictures and those texts, so a replay on the same machine and library versions gives the same file,
and therefore the same artifact id.

An artifact is the file; a holding (ArtifactOwner) is one user's hold on it and how they came by it.
Everything beyond the bytes (kind, job, seed, recipe, lineage) is read through the caller's holding,
so someone who uploads another user's picture holds an upload: no job, no recipe, no lineage but
their own.
"""
from __future__ import annotations

import io
import json
import time

import PIL.Image
import PIL.PngImagePlugin
from peewee import Case

from storage.blobs import BlobStore
from storage.db import database
from storage.models import Artifact, ArtifactOwner, Lineage, User
from storage.video import MP4_MIME, mp4_metadata, mp4_without_metadata

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that carry text about a picture rather than the picture: the recipe (`parameters`, `atelier`)
# is in tEXt or iTXt, and EXIF could name a camera or a place.
PNG_METADATA_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf"})


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


def png_without_texts(data: bytes) -> bytes:
    """The PNG `data` without its text and EXIF chunks (PNG_METADATA_CHUNKS), and without anything after
    its IEND chunk. Every other chunk is kept byte for byte, so the pixels (palette, transparency and
    colour profile included) are exactly the stored ones, with nothing decoded or encoded again. Raises
    ValueError for bytes that are not a PNG or end inside a chunk."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    kept, position = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind, end = data[position + 4:position + 8], position + 12 + length
        if end > len(data):
            raise ValueError(f"the PNG's chunk at byte {position} runs past the end of the file")
        if kind not in PNG_METADATA_CHUNKS:
            kept.append(data[position:end])
        if kind == b"IEND":
            break
        position = end
    return b"".join(kept)


def without_recipe(data: bytes, mime: str) -> bytes:
    """A stored file as it may be shown without its recipe: a PNG without its text chunks, an MP4
    without its metadata keys (the pictures are the same either way); other files as they are."""
    if mime == "image/png":
        return png_without_texts(data)
    if mime == MP4_MIME:
        return mp4_without_metadata(data)
    return data


def store_artifact(blobs: BlobStore, data: bytes, *, owner: User, kind: str, mime: str, suffix: str,
                   width: int = 0, height: int = 0, job=None, plan_hash: str = "", step_id: str = "",
                   output_index: int = 0, seed: int | None = None, frames: int = 0, fps: float = 0.0,
                   parents: tuple[tuple[str, str], ...] = ()) -> Artifact:
    """Store `data` as a blob and record that `owner` holds it, and how; returns the Artifact (the
    existing one if these exact bytes were stored before, by anyone).

    Args:
        kind: "upload" for bytes the owner sent; "image", "video" or "poster" for what `job` (one of
            the owner's jobs) made, at `step_id` / `output_index` of its plan (`plan_hash`) with `seed`.
        parents: (artifact id, relation) lineage edges from what the job made it from.

    The owner's holding records the first way they came by the bytes, except that a job of theirs
    making bytes they had only uploaded makes the holding theirs as made (with that job's recipe).
    """
    key = blobs.put(data, suffix)
    artifact_id = key[:64]
    made = job is not None and kind != "upload"
    prompt, model = search_fields(job.plan, step_id) if made else ("", "")
    how = {"kind": kind, "job": job, "plan_hash": plan_hash, "step_id": step_id, "output_index": output_index,
           "seed": seed, "prompt": prompt, "model": model, "final": not made or is_final_step(job.plan, step_id)}
    with database.atomic():
        Artifact.insert(id=artifact_id, mime=mime, size=len(data), width=width, height=height, blob_key=key,
                        frames=frames, fps=fps, created_at=time.time()).on_conflict_ignore().execute()
        _hold(artifact_id, owner, time.time(), how)
        for parent_id, relation in parents:
            if parent_id != artifact_id:
                Lineage.insert(child=artifact_id, parent=parent_id, relation=relation).on_conflict_ignore().execute()
    # Once more, now that the row is there: a delete of the last holding of these same bytes may have removed
    # the blob between the put above and this row (delete_holding puts it back from its side of the race).
    blobs.put(data, suffix)
    return Artifact.get_by_id(artifact_id)


def search_fields(plan_json: str, step_id: str) -> tuple[str, str]:
    """(prompt, model id) of step `step_id` of a plan (its JSON text), as the Gallery searches them: a step
    without a prompt (an upscale) takes the plan's first prompt, one without a model the plan's first model.
    ("", "") for a plan this cannot read. (Migration 0011_gallery_search filled older holdings the same way.)"""
    try:
        steps = json.loads(plan_json).get("steps", [])
    except (ValueError, TypeError, AttributeError):
        return "", ""
    steps = [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
    ordered = [s for s in steps if s.get("id") == step_id] + steps
    prompt = next((s["prompt"] for s in ordered if isinstance(s.get("prompt"), str) and s["prompt"]), "")
    model = next((s["model"]["id"] for s in ordered
                  if isinstance(s.get("model"), dict) and isinstance(s["model"].get("id"), str)), "")
    return prompt, model


def is_final_step(plan_json: str, step_id: str) -> bool:
    """Whether no other step of a plan (its JSON text) takes step `step_id`'s outputs: what the job was asked
    for, not a step on the way (a hires fix's first picture). True for a plan this cannot read."""
    try:
        steps = json.loads(plan_json).get("steps", [])
        return not any(source == step_id for s in steps for _, source in s.get("inputs", ()))
    except (ValueError, AttributeError, TypeError):
        return True


def _hold(artifact_id: str, owner: User | int, created_at: float, how: dict) -> None:
    """Record that `owner` holds `artifact_id` as `how` says (kind, job, plan_hash, step_id, output_index,
    seed, prompt, model, final): a new holding, or their upload of it turned into what they made. Bytes a
    job made on the way, made again as a final output, become final."""
    where = (ArtifactOwner.artifact == artifact_id) & (ArtifactOwner.owner == owner)
    ArtifactOwner.insert(artifact=artifact_id, owner=owner, created_at=created_at, **how).on_conflict_ignore().execute()
    if how["kind"] != "upload":
        ArtifactOwner.update(**how).where(where & (ArtifactOwner.kind == "upload")).execute()
    if how.get("final", True):
        ArtifactOwner.update(final=True).where(where & (ArtifactOwner.final == False)).execute()   # noqa: E712


def move_holdings(source: User, target: User) -> None:
    """Give `target` what `source` holds, each as `source` held it (a guest who logs in to an account:
    what the guest made stays made, by the guest's jobs, which the caller moves to `target` in the same
    transaction). Where both hold the same bytes, made wins over uploaded."""
    with database.atomic():
        for holding in ArtifactOwner.select().where(ArtifactOwner.owner == source):
            _hold(holding.artifact_id, target, holding.created_at,
                  {"kind": holding.kind, "job": holding.job_id, "plan_hash": holding.plan_hash,
                   "step_id": holding.step_id, "output_index": holding.output_index, "seed": holding.seed,
                   "prompt": holding.prompt, "model": holding.model, "final": holding.final})
        ArtifactOwner.delete().where(ArtifactOwner.owner == source).execute()


def lineage_of(holding: ArtifactOwner) -> tuple[list[dict], list[dict]]:
    """(parents, children) of an artifact as its holder sees them, each as {"artifact_id", "relation"}.

    An edge is written when a job makes its child, so a holder sees the edges their own jobs made, among
    artifacts they hold: an artifact's parents only if one of their jobs made it (not if they uploaded
    the bytes), and only the children their jobs made from it."""
    held = ArtifactOwner.select(ArtifactOwner.artifact).where(ArtifactOwner.owner == holding.owner_id)
    made = held.where(ArtifactOwner.kind != "upload")
    parents = [] if not holding.made else [
        {"artifact_id": e.parent_id, "relation": e.relation}
        for e in Lineage.select().where((Lineage.child == holding.artifact_id) & Lineage.parent.in_(held))
        .order_by(Lineage.id)]
    children = [{"artifact_id": e.child_id, "relation": e.relation}
                for e in Lineage.select().where((Lineage.parent == holding.artifact_id) & Lineage.child.in_(made))
                .order_by(Lineage.id)]
    return parents, children


def recipe_of(blobs: BlobStore, holding: ArtifactOwner) -> dict:
    """The recipe of an artifact as its holder sees it: the file's recipe (`file_recipe`) where one of
    the holder's jobs made it; {} for an upload (whoever made those bytes, their recipe is not the
    uploader's) or a file without one."""
    return file_recipe(blobs, holding.artifact) if holding.made else {}


def file_recipe(blobs: BlobStore, artifact: Artifact) -> dict:
    """The recipe a stored file carries (`recipe_in`): what replaying it runs, whoever made it."""
    if artifact.mime not in ("image/png", MP4_MIME):
        return {}
    return recipe_in(blobs.get(artifact.blob_key), artifact.mime)


def recipe_in(data: bytes, mime: str) -> dict:
    """The recipe a PNG or MP4 carries in its `atelier` text, parsed (plan, plan_hash, step, index,
    environment). {} for other files, files without one, or one whose text is not a JSON object (made
    elsewhere, or edited)."""
    if mime == "image/png":
        texts = png_texts(data)
    elif mime == MP4_MIME:
        texts = mp4_metadata(data)
    else:
        texts = {}
    try:
        recipe = json.loads(texts["atelier"]) if "atelier" in texts else {}
    except (ValueError, RecursionError):
        return {}
    return recipe if isinstance(recipe, dict) else {}


def held_by(user: User):
    """A condition on Artifact: `user` holds it (admins hold everything)."""
    if user.role == "admin":
        return True
    return Artifact.id.in_(ArtifactOwner.select(ArtifactOwner.artifact).where(ArtifactOwner.owner == user))


def find_artifact(user: User, artifact_id) -> Artifact | None:
    """The artifact (the file) with `artifact_id` if `user` may see it; None otherwise (someone else's
    looks missing). What it is to them (kind, job, recipe) is in `find_holding`."""
    if not isinstance(artifact_id, str) or not artifact_id:
        return None
    return Artifact.get_or_none((Artifact.id == artifact_id) & held_by(user))


def _holdings_of(artifact_id: str):
    return ArtifactOwner.select(ArtifactOwner, Artifact).join(Artifact).where(ArtifactOwner.artifact == artifact_id)


def own_holding(user: User, artifact_id) -> ArtifactOwner | None:
    """`user`'s own holding of `artifact_id` (with `.artifact` loaded), admins included; None if they hold
    none."""
    if not isinstance(artifact_id, str) or not artifact_id:
        return None
    return _holdings_of(artifact_id).where(ArtifactOwner.owner == user).first()


def find_holding(user: User, artifact_id) -> ArtifactOwner | None:
    """How `user` holds `artifact_id` (their ArtifactOwner row, with `.artifact` loaded); None if they
    don't (someone else's looks missing). An admin, who may see everything, gets the holding of whoever
    made it (else of whoever held it first) when they hold none themselves: they see it as its maker does."""
    own = own_holding(user, artifact_id)
    if own is not None or user.role != "admin" or not isinstance(artifact_id, str) or not artifact_id:
        return own
    uploaded = Case(None, [(ArtifactOwner.kind == "upload", 1)], 0)
    return _holdings_of(artifact_id).order_by(uploaded, ArtifactOwner.created_at, ArtifactOwner.id).first()


def recent_artifacts(user: User, limit: int = 100) -> list[ArtifactOwner]:
    """`user`'s holdings (with `.artifact` loaded), newest first (by when they got them); a video's poster
    is not listed apart from its video."""
    return list(ArtifactOwner.select(ArtifactOwner, Artifact).join(Artifact)
                .where((ArtifactOwner.owner == user) & (ArtifactOwner.kind != "poster"))
                .order_by(ArtifactOwner.created_at.desc(), ArtifactOwner.output_index).limit(limit))


# The Gallery's filters: what a holding is to its holder. Painted masks and other files sent are uploads;
# a video's poster is listed only as its video; what a job made on the way to its outputs only under "all".
GALLERY_FILTERS = {
    "outputs": ArtifactOwner.kind.in_(("image", "video")) & (ArtifactOwner.final == True),   # noqa: E712
    "uploads": ArtifactOwner.kind == "upload",
    "videos": Artifact.mime == MP4_MIME,
    "all": ArtifactOwner.kind != "poster",
}


def gallery_query(user: User, shown: str = "outputs", search: str = ""):
    """`user`'s holdings (with `.artifact` loaded) that `shown` (a GALLERY_FILTERS key) lists and whose prompt
    or model id contains every word of `search` (any case), newest first: a query the caller pages with
    `.paginate` or `.limit`/`.offset` and counts with `.count()`, so the database does both. Raises KeyError
    for an unknown filter."""
    condition = (ArtifactOwner.owner == user) & (ArtifactOwner.kind != "poster") & GALLERY_FILTERS[shown]
    for word in search.split():
        condition &= ArtifactOwner.prompt.contains(word) | ArtifactOwner.model.contains(word)
    return (ArtifactOwner.select(ArtifactOwner, Artifact).join(Artifact).where(condition)
            .order_by(ArtifactOwner.created_at.desc(), ArtifactOwner.output_index, ArtifactOwner.id))


def delete_holding(blobs: BlobStore, user: User, artifact_id) -> list[str]:
    """Take `artifact_id` out of what `user` holds (with the poster of a video of theirs); returns the ids of
    the artifacts that went with it, [] when they hold no such artifact (another user's looks missing; admins
    delete only their own holdings too).

    An artifact, with its file, goes only when nobody holds it any more and no other artifact was made from it
    (a lineage edge names it as parent): while another user holds the same bytes, or something was made from
    them, the row, the blob and every lineage edge stay, so others' lineage and replays are untouched."""
    holding = own_holding(user, artifact_id)
    if holding is None:
        return []
    gone: list[Artifact] = []
    with database.atomic():
        posters = [e.child_id for e in Lineage.select(Lineage.child).where(
            (Lineage.parent == holding.artifact_id) & (Lineage.relation == "poster_of"))]
        ArtifactOwner.delete().where((ArtifactOwner.owner == user) & (
            (ArtifactOwner.artifact == holding.artifact_id) |
            (ArtifactOwner.artifact.in_(posters) & (ArtifactOwner.kind == "poster")))).execute()
        for candidate in [*posters, holding.artifact_id]:       # posters first: each names the video as parent
            held = ArtifactOwner.select().where(ArtifactOwner.artifact == candidate).exists()
            made_from = Lineage.select().where(Lineage.parent == candidate).exists()
            if not held and not made_from:
                gone.append(Artifact.get_by_id(candidate))
                Lineage.delete().where(Lineage.child == candidate).execute()
                Artifact.delete().where(Artifact.id == candidate).execute()
    for artifact in gone:
        _drop_blob(blobs, artifact.blob_key)
    return [a.id for a in gone]


def _drop_blob(blobs: BlobStore, key: str) -> None:
    """Delete the blob `key` of an artifact row just deleted. `store_artifact` of the same bytes by someone
    else puts the blob before inserting its row and again after: if its row appeared while this deleted the
    blob, the bytes are put back here (read before deleting), so a row never outlives its blob."""
    try:
        data = blobs.get(key)
    except KeyError:
        return
    blobs.delete(key)
    if Artifact.select().where(Artifact.blob_key == key).exists():
        blobs.put(data, key[64:])
