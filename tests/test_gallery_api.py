"""/gallery and /delete_artifact (issue 14, item 6) on the served app, driven by gradio_client: what a job made
is found by its prompt and model, an upload is listed under uploads only, delete takes it out of the caller's
Gallery and files, and another user's id is "not found" to /delete_artifact."""
import uuid

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from tests.conftest import api_client


def test_gallery_finds_outputs_by_prompt_and_model_and_pages(client):
    word = f"zebra{uuid.uuid4().hex[:8]}"
    _, made = client.predict(prompt=f"a {word} at noon", seed=4, steps=2, batch_size=2, api_name="/txt2img")
    found = client.predict(filter="outputs", query=f"{word.upper()} demo-sd15", page=1, api_name="/gallery")
    assert found["total"] == 2 and found["pages"] == 1 and found["per_page"] == 48
    assert {item["artifact_id"] for item in found["items"]} == set(made["artifact_ids"])
    item = found["items"][0]
    assert (item["kind"], item["mime"], item["model"], item["width"]) == ("image", "image/png", "demo-sd15", 64)
    assert item["prompt"] == f"a {word} at noon" and item["seed"] in (4, 5)
    assert client.predict(filter="outputs", query=f"{word} demo-sdxl", api_name="/gallery")["total"] == 0
    # Everything of the owner's, paged by the server: page 1 holds the newest.
    everything = client.predict(filter="all", api_name="/gallery")
    assert everything["total"] >= 2 and everything["items"][0]["artifact_id"] in made["artifact_ids"]
    with pytest.raises(AppError, match="Unknown filter 'mine'"):
        client.predict(filter="mine", api_name="/gallery")


def test_uploads_are_not_outputs_and_delete_takes_them_away(client, tmp_path):
    import PIL.Image

    path = tmp_path / "source.png"
    PIL.Image.new("RGB", (64, 64), (uuid.uuid4().int % 256, 40, 90)).save(path)
    _, made = client.predict(image=handle_file(str(path)), prompt="a quiet harbour", strength=0.5, steps=2,
                             seed=1, api_name="/img2img")
    info = client.predict(artifact_id=made["artifact_ids"][0], api_name="/artifact_info")[1]
    upload = info["parents"][0]["artifact_id"]
    uploads = client.predict(filter="uploads", api_name="/gallery")
    assert upload in [i["artifact_id"] for i in uploads["items"]]
    assert {i["kind"] for i in uploads["items"]} == {"upload"}
    outputs = client.predict(filter="outputs", query="quiet harbour", api_name="/gallery")
    assert upload not in [i["artifact_id"] for i in outputs["items"]]

    gone = client.predict(artifact_id=upload, api_name="/delete_artifact")
    assert gone["deleted"] and gone["files_removed"] == []     # the img2img result was made from it: file kept
    assert upload not in [i["artifact_id"] for i in client.predict(filter="uploads", api_name="/gallery")["items"]]
    with pytest.raises(AppError, match="No artifact"):
        client.predict(artifact_id=upload, api_name="/artifact_info")
    child = made["artifact_ids"][0]
    assert client.predict(artifact_id=child, api_name="/delete_artifact")["files_removed"] == [child]
    with pytest.raises(AppError, match="No artifact"):
        client.predict(artifact_id=child, api_name="/delete_artifact")


def test_another_users_artifact_is_not_found_to_delete(accounts_app, make_user):
    _, a_key = make_user(balance=20)
    _, b_key = make_user(balance=20)
    alice, bob = api_client(accounts_app, a_key), api_client(accounts_app, b_key)
    _, made = alice.predict(prompt="alice's lighthouse", seed=2, steps=2, api_name="/txt2img")
    with pytest.raises(AppError, match="No artifact"):
        bob.predict(artifact_id=made["artifact_ids"][0], api_name="/delete_artifact")
    assert bob.predict(filter="all", api_name="/gallery")["total"] == 0
    assert alice.predict(filter="all", api_name="/gallery")["items"][0]["artifact_id"] == made["artifact_ids"][0]
