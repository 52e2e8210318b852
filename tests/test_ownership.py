"""Per-owner artifacts (issue 11, door 4): bytes are one file, but each holder sees only what is theirs.

A makes a picture; B downloads it from a share link and uploads the same bytes. B holds an upload:
no job, no recipe, no seed, no parents, and only the children B's own jobs made; replaying it runs the
recipe the file carries as B's own paid request. A still sees all of it. A share link with the recipe off serves the picture without its text
chunks (the same pixels); a link to bytes its owner only uploaded shows no recipe on its page.
Driven through gradio_client and plain HTTP on the served app in accounts mode.
"""
import io

import httpx
import numpy as np
import PIL.Image
import pytest
from gradio_client import handle_file

from storage.artifacts import PNG_METADATA_CHUNKS, png_texts, without_recipe
from tests.conftest import api_client


def chunk_types(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, in order."""
    types, position = [], 8
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        types.append(data[position + 4:position + 8])
        position += 12 + length
    return types


def owner_of(info: dict):
    """The user whose job `info` (a generation endpoint's info) describes."""
    from storage.models import Job

    return Job.get_by_id(info["job_id"]).owner


def pixels(data: bytes) -> np.ndarray:
    with PIL.Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"))


@pytest.fixture
def claimed(accounts_app, make_user, tmp_path):
    """A made a picture and upscaled it; B uploaded the picture's bytes (from A's share link) to img2img.
    Returns (A's client, B's client, A's txt2img info, A's upscale info, B's img2img info, the bytes)."""
    a, a_key = make_user(balance=20)
    b, b_key = make_user(balance=20)
    alice, bob = api_client(accounts_app, a_key), api_client(accounts_app, b_key)
    _, made = alice.predict(prompt="alice's secret lighthouse", seed=11, steps=2, api_name="/txt2img")
    picture = made["artifact_ids"][0]
    token = accounts_app.account.share(a, [picture], show_recipe=True)
    with httpx.Client(base_url=accounts_app.url) as anyone:
        data = anyone.get(f"/share/{token}/file/{picture}").content
    assert png_texts(data)["parameters"].startswith("alice's secret lighthouse")     # the recipe travels with it
    path = tmp_path / "downloaded.png"
    path.write_bytes(data)
    _, upscaled = alice.predict(image=handle_file(str(path)), scale=2.0, api_name="/upscale")
    _, edited = bob.predict(image=handle_file(str(path)), prompt="bob's boat", strength=0.5, steps=2, seed=3,
                            api_name="/img2img")
    return alice, bob, made, upscaled, edited, data


def test_uploading_someone_elses_picture_gives_none_of_their_job_recipe_or_lineage(claimed):
    alice, bob, made, upscaled, edited, _ = claimed
    picture = made["artifact_ids"][0]
    _, theirs = bob.predict(artifact_id=picture, api_name="/artifact_info")
    assert (theirs["kind"], theirs["job_id"], theirs["plan_hash"], theirs["recipe"], theirs["seed"]) == \
        ("upload", None, "", {}, None)
    assert theirs["parents"] == []
    assert theirs["children"] == [{"artifact_id": edited["artifact_ids"][0], "relation": "source"}]   # B's own only
    assert "alice" not in str(theirs)

    _, mine = alice.predict(artifact_id=picture, api_name="/artifact_info")
    assert (mine["kind"], mine["job_id"], mine["plan_hash"], mine["seed"]) == \
        ("image", made["job_id"], made["plan_hash"], made["seeds"][0])
    assert mine["recipe"]["plan"]["steps"][-1]["prompt"] == "alice's secret lighthouse"
    assert mine["children"] == [{"artifact_id": upscaled["artifact_ids"][0], "relation": "upscale_of"}]


def test_a_claimed_upload_replays_from_its_files_recipe_as_the_uploaders_own_paid_request(claimed):
    """B holds A's picture as an upload; replaying it runs the recipe its file carries as B's request:
    charged to B, made by B's job, the same bytes. A's job, credits and holding are untouched."""
    from auth import credits

    alice, bob, made, _, edited, _ = claimed
    picture = made["artifact_ids"][0]
    b = owner_of(edited)
    before, alices = credits.balance(b), credits.balance(owner_of(made))
    _, outcome = bob.predict(artifact_id=picture, api_name="/replay")
    assert (outcome["artifact_id"], outcome["identical"]) == (picture, True)
    assert credits.balance(b) == before - made["credits"] and credits.balance(owner_of(made)) == alices
    _, theirs = bob.predict(artifact_id=picture, api_name="/artifact_info")
    assert (theirs["kind"], theirs["job_id"]) == ("image", outcome["job_id"])      # now made by B's own job
    _, mine = alice.predict(artifact_id=picture, api_name="/artifact_info")
    assert (mine["kind"], mine["job_id"]) == ("image", made["job_id"])


def test_the_gallery_shows_each_holder_their_own_kind_and_seed(accounts_app, claimed):
    from storage.artifacts import find_holding

    _, _, made, _, edited, _ = claimed
    picture = made["artifact_ids"][0]
    alice, bob = owner_of(made), owner_of(edited)
    [bobs] = [h for h in accounts_app.artifacts.recent_artifacts(bob) if h.artifact_id == picture]
    [alices] = [h for h in accounts_app.artifacts.recent_artifacts(alice) if h.artifact_id == picture]
    assert (bobs.kind, bobs.seed, alices.kind, alices.seed) == ("upload", None, "image", made["seeds"][0])
    assert find_holding(bob, picture).job_id is None


def test_a_share_link_without_the_recipe_serves_the_same_pixels_and_no_text(accounts_app, claimed):
    _, _, made, _, _, stored = claimed
    picture = made["artifact_ids"][0]
    hidden = accounts_app.account.share(owner_of(made), [picture], show_recipe=False)
    with httpx.Client(base_url=accounts_app.url) as anyone:
        page = anyone.get(f"/share/{hidden}")
        served = anyone.get(f"/share/{hidden}/file/{picture}")
    assert "lighthouse" not in page.text
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert png_texts(served.content) == {} and not set(chunk_types(served.content)) & PNG_METADATA_CHUNKS
    assert set(chunk_types(stored)) & PNG_METADATA_CHUNKS                # the stored file still has them
    assert np.array_equal(pixels(served.content), pixels(stored))


def test_a_share_link_to_an_upload_shows_no_recipe_of_its_maker(accounts_app, claimed):
    _, _, made, _, edited, _ = claimed
    token = accounts_app.account.share(owner_of(edited), [made["artifact_ids"][0]], show_recipe=True)
    with httpx.Client(base_url=accounts_app.url) as anyone:
        page = anyone.get(f"/share/{token}")
    assert page.status_code == 200 and "lighthouse" not in page.text and "Recipe" not in page.text


def test_a_video_without_its_recipe_keeps_every_frame():
    from storage.video import MP4_MIME, encode_mp4, mp4_metadata, read_mp4

    frames = [PIL.Image.new("RGB", (64, 48), (40 * i, 100, 255 - 40 * i)) for i in range(5)]
    video = encode_mp4(frames, 8, {"parameters": "a secret prompt", "atelier": '{"plan": {}}'})
    stripped = without_recipe(video, MP4_MIME)
    assert mp4_metadata(video) and mp4_metadata(stripped) == {}
    assert b"secret prompt" not in stripped
    (before, fps_before), (after, fps_after) = read_mp4(video), read_mp4(stripped)
    assert fps_after == fps_before and [f.tobytes() for f in after] == [f.tobytes() for f in before]
