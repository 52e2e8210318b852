"""Uploads that wait for their request: checked when they arrive, stored only if the request is accepted.

A form or API call that sends images (or a video) checks each one first (`check_image`,
`check_video`: format, size, pixel limit, damage; see storage/uploads.py) and names it in its spec by
the id it will have once stored, the sha256 of its bytes. The compiler then sees it through `facts`
as if it were stored, so the request is validated and priced exactly as one naming stored artifacts,
and `JobService.submit` stores the uploads (`keep`) only when it queues the job. A request refused
for any reason (a GIF mask, an image too small or too narrow for the model, too few credits) leaves
no file and no row behind.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pipelines import image_ops
from pipelines.errors import AtelierError
from pipelines.facts import InputFacts
from pipelines.spec import Link, LoadImage, LoadMask, Node, WorkflowSpec
from storage.artifacts import store_artifact
from storage.blobs import BlobStore
from storage.models import Artifact, User
from storage.uploads import UploadRejected, decode_image, inspect_upload, inspect_video_upload
from storage.video import MP4_MIME


@dataclass(frozen=True)
class Upload:
    """An image or video a person sent, checked but not stored: its bytes, the artifact id they will
    have (`artifact_id`, their sha256), and what the check found (type, size; frames and fps for a video)."""

    artifact_id: str
    data: bytes
    mime: str
    suffix: str
    width: int
    height: int
    frames: int = 0
    fps: float = 0.0

    @property
    def is_video(self) -> bool:
        return self.mime.startswith("video/")


def check_image(data: bytes, max_pixels: int, name: str = "The image") -> Upload:
    """`data` as an Upload if it is a usable image (PNG, JPEG or WebP within `max_pixels`); raises
    AtelierError (code "bad_image") saying what is wrong with it otherwise. `name` names it in messages."""
    try:
        mime, suffix, width, height = inspect_upload(data, max_pixels, name)
    except UploadRejected as e:
        raise AtelierError(str(e), code="bad_image", field="image") from None
    return Upload(hashlib.sha256(data).hexdigest(), data, mime, suffix, width, height)


def check_video(data: bytes, max_pixels: int, max_frames: int, name: str = "The video") -> Upload:
    """`data` as an Upload if it is a usable MP4 video; raises AtelierError (code "bad_video") otherwise."""
    try:
        width, height, frames, fps = inspect_video_upload(data, max_pixels, max_frames, name)
    except UploadRejected as e:
        raise AtelierError(str(e), code="bad_video", field="video") from None
    return Upload(hashlib.sha256(data).hexdigest(), data, MP4_MIME, ".mp4", width, height, frames, fps)


def facts(upload: Upload, use: str) -> InputFacts | None:
    """What the compiler knows of an upload used as "image", "mask" or "video" (see
    pipelines.facts.Describe); None when it is not that (an image given as a video, say). A mask is
    decoded to see whether it is empty, as a stored one would be."""
    if upload.is_video != (use == "video"):
        return None
    return InputFacts(width=upload.width, height=upload.height, mask_empty=use == "mask" and mask_empty(upload.data),
                      frames=upload.frames, fps=upload.fps)


def mask_empty(data: bytes) -> bool:
    """Whether the image `data`, used as a mask, has no white pixel at all (so nothing would be painted)."""
    image = decode_image(data)
    return image_ops.is_empty(image_ops.to_mask(image, image.size)[0])


def keep(blobs: BlobStore, user: User, upload: Upload) -> Artifact:
    """Store an upload as `user`'s (kind "upload"); returns its Artifact, the existing one for bytes
    stored before."""
    return store_artifact(blobs, upload.data, owner=user, kind="upload", mime=upload.mime, suffix=upload.suffix,
                          width=upload.width, height=upload.height, frames=upload.frames, fps=upload.fps)


def loading_spec(params, image: str | None = None, mask: str | None = None, control: str | None = None,
                 canny=None) -> WorkflowSpec:
    """One `params` node (id "1") with the pictures it works on loaded into it by artifact id (stored ones, or
    checked uploads named by the ids they will have): `image`, `mask` and `control`, those given. The control
    image goes through `canny` (an edge-map node's params) when one is given. The forms, the named endpoints and
    the A1111 API build their editing requests here."""
    nodes, inputs = [], []
    if image is not None:
        nodes.append(Node("image", LoadImage(artifact_id=image)))
        inputs.append(("image", Link("image", "image")))
    if mask is not None:
        nodes.append(Node("mask", LoadMask(artifact_id=mask)))
        inputs.append(("mask", Link("mask", "mask")))
    if control is not None:
        nodes.append(Node("guide", LoadImage(artifact_id=control)))
        if canny is not None:
            nodes.append(Node("edges", canny, (("image", Link("guide", "image")),)))
            inputs.append(("control", Link("edges", "images")))
        else:
            inputs.append(("control", Link("guide", "image")))
    nodes.append(Node("1", params, tuple(inputs)))
    return WorkflowSpec(nodes=tuple(nodes))
