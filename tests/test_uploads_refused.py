"""Refused requests store nothing (issue 11, item 9): the images a request sends are checked and the
request compiled and priced before any of them is stored, so a GIF mask, images the model cannot take
(63x37, 1x1, 4096x64) or a request the caller cannot pay for leave no Artifact row, no holding and no
blob file behind, while an accepted request stores its upload as the caller's. Driven through
gradio_client on the served app."""
import hashlib
import io
import os

import PIL.Image
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from storage.artifacts import find_holding
from storage.models import Artifact, ArtifactOwner
from tests.conftest import api_client


def noise(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    """An image of random pixels: bytes no earlier test can have stored."""
    image = PIL.Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def stored(app) -> tuple[int, int, int]:
    """(Artifact rows, holdings, blob files) as they are now."""
    files = sum(1 for path in app.service.blobs.root.rglob("*") if path.is_file())
    return Artifact.select().count(), ArtifactOwner.select().count(), files


def as_file(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return handle_file(str(path))


@pytest.mark.parametrize("size, words", [
    ((63, 37), "width must be between 64 and 2048, got 56"),        # 63x37 rounds down to 56x32
    ((1, 1), "width must be between 64 and 2048, got 8"),           # 1x1 rounds up to 8x8
    ((4096, 64), "width must be between 64 and 2048, got 4096"),
])
def test_an_image_the_model_cannot_take_is_refused_and_not_stored(atelier, client, tmp_path, size, words):
    image = noise(size)
    before = stored(atelier)
    with pytest.raises(AppError, match=words):
        client.predict(image=as_file(tmp_path, "odd.png", image), prompt="x", api_name="/img2img")
    assert stored(atelier) == before
    assert Artifact.get_or_none(Artifact.id == hashlib.sha256(image).hexdigest()) is None


def test_a_gif_mask_is_refused_and_its_image_not_stored(atelier, client, tmp_path):
    image, mask = noise((64, 64)), noise((64, 64), "GIF")
    before = stored(atelier)
    with pytest.raises(AppError, match="The mask is a GIF image; send a PNG, JPEG or WebP image"):
        client.predict(image=as_file(tmp_path, "image.png", image), mask=as_file(tmp_path, "mask.gif", mask),
                       prompt="x", api_name="/inpaint")
    assert stored(atelier) == before
    assert Artifact.get_or_none(Artifact.id == hashlib.sha256(image).hexdigest()) is None


def test_a_request_the_caller_cannot_pay_for_stores_nothing(accounts_app, make_user, tmp_path):
    _, key = make_user(balance=0)
    image = noise((64, 64))
    before = stored(accounts_app)
    with pytest.raises(AppError, match="you have 0"):
        api_client(accounts_app, key).predict(image=as_file(tmp_path, "image.png", image), prompt="x",
                                              api_name="/img2img")
    assert stored(accounts_app) == before


def test_pricing_a_request_stores_none_of_its_images(atelier, owner):
    from pipelines.spec import Img2Img
    from ui.common import editing_spec

    image = noise((64, 64))
    before = stored(atelier)
    draft = editing_spec(atelier.service, owner, Img2Img(prompt="x"), image)
    assert draft.quote(atelier.service, owner).credits >= 0
    assert stored(atelier) == before
    assert draft.uploads[0].artifact_id == hashlib.sha256(image).hexdigest()


def test_an_accepted_request_stores_its_upload_as_the_callers(atelier, client, owner, tmp_path):
    image = noise((64, 64))
    _, info = client.predict(image=as_file(tmp_path, "image.png", image), prompt="x", strength=0.0, steps=2,
                             api_name="/img2img")
    upload = find_holding(owner, hashlib.sha256(image).hexdigest())
    assert (upload.kind, upload.job_id, upload.artifact.width) == ("upload", None, 64)
    made = find_holding(owner, info["artifact_ids"][0])
    assert (made.kind, made.job_id) == ("image", info["job_id"])
