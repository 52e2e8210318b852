"""The Gallery's catalogue (issue 14, item 6): filters (outputs, uploads, videos, all), search by prompt and
model, paging done by the database for thousands of holdings, and delete: only one's own holding, the file
kept while another user holds the same bytes or something was made from it, others' lineage untouched.

On the session app's real SQLite database and blob store, each test with users of its own."""
import logging
import time
import uuid

import pytest

from pipelines.errors import AtelierError, NotFound
from storage.artifacts import search_fields, store_artifact
from storage.db import database
from storage.models import Artifact, ArtifactOwner, Lineage, User
from storage.video import MP4_MIME

THOUSANDS = 3120


def new_user() -> User:
    return User.create(email=f"{uuid.uuid4().hex[:12]}@gallery.test")


def fake_id(n: int, salt: str) -> str:
    """A 64-hex artifact id for row `n` of a test (rows inserted without blobs only page and count)."""
    return f"{salt}{n:08x}".ljust(64, "0")[:64]


@pytest.fixture(scope="module")
def crowded(atelier):
    """A user holding THOUSANDS artifacts, inserted in bulk through the models: every 10th an upload, every
    7th a video (with its poster, which the Gallery never lists apart), the rest images; prompts "a red fox
    N" or "a blue whale N", models demo-sd15 or demo-sdxl. Returns (user, ids newest first)."""
    user, salt, now = new_user(), uuid.uuid4().hex[:8], time.time()
    artifacts, holdings = [], []
    for n in range(THOUSANDS):
        video = n % 7 == 0
        kind = "upload" if n % 10 == 0 else ("video" if video else "image")
        artifacts.append({"id": fake_id(n, salt), "mime": MP4_MIME if video else "image/png", "size": 10,
                          "width": 64, "height": 64, "blob_key": fake_id(n, salt) + ".png", "created_at": now})
        holdings.append({"artifact": fake_id(n, salt), "owner": user.id, "kind": kind, "created_at": now + n,
                         "prompt": "" if kind == "upload" else f"a {'red fox' if n % 2 else 'blue whale'} {n}",
                         "model": "" if kind == "upload" else ("demo-sdxl" if n % 3 == 0 else "demo-sd15")})
        if video:
            poster = fake_id(n, salt + "p")
            artifacts.append({**artifacts[-1], "id": poster, "mime": "image/png", "blob_key": poster + ".png"})
            holdings.append({**holdings[-1], "artifact": poster, "kind": "poster"})
    with database.atomic():
        for chunk in range(0, len(artifacts), 500):
            Artifact.insert_many(artifacts[chunk:chunk + 500]).execute()
            ArtifactOwner.insert_many(holdings[chunk:chunk + 500]).execute()
    newest_first = [fake_id(n, salt) for n in reversed(range(THOUSANDS))]
    return user, newest_first


def expected(ids_newest_first, keep) -> list[str]:
    return [i for n, i in zip(reversed(range(THOUSANDS)), ids_newest_first) if keep(n)]


def test_pages_of_thousands_are_counted_and_cut_by_the_query(atelier, crowded, caplog):
    user, ids = crowded
    catalogue = atelier.artifacts
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        second, total, page = catalogue.browse(user, "all", page=2)
    assert (total, page) == (THOUSANDS, 2)
    assert [h.artifact_id for h in second] == ids[48:96]
    sql = [r.getMessage() for r in caplog.records if r.name == "peewee"]
    paged = [q for q in sql if "LIMIT" in q and "artifact_owner" in q and "COUNT" not in q]
    assert paged and "OFFSET" in paged[-1], sql              # the database cut the page out
    assert any("COUNT" in q for q in sql), sql               # and counted, without reading every row here
    last, _, page = catalogue.browse(user, "all", page=10 ** 6)
    assert page == -(-THOUSANDS // 48) and [h.artifact_id for h in last] == ids[(page - 1) * 48:]


def test_filters_split_outputs_uploads_and_videos(atelier, crowded):
    user, ids = crowded
    catalogue = atelier.artifacts
    outputs, total, _ = catalogue.browse(user, "outputs", page=1)
    assert total == sum(1 for n in range(THOUSANDS) if n % 10)
    assert [h.artifact_id for h in outputs] == expected(ids, lambda n: n % 10)[:48]
    uploads, total, _ = catalogue.browse(user, "uploads", page=3)
    assert total == THOUSANDS // 10 + (THOUSANDS % 10 > 0)
    assert [h.artifact_id for h in uploads] == expected(ids, lambda n: n % 10 == 0)[96:144]
    assert {h.kind for h in uploads} == {"upload"}
    videos, total, _ = catalogue.browse(user, "videos")
    assert total == sum(1 for n in range(THOUSANDS) if n % 7 == 0)
    assert all(h.artifact.mime == MP4_MIME for h in videos) and "poster" not in {h.kind for h in videos}
    with pytest.raises(AtelierError, match="Unknown filter 'posters'"):
        catalogue.browse(user, "posters")


def test_search_matches_every_word_in_the_prompt_or_the_model(atelier, crowded):
    user, ids = crowded
    catalogue = atelier.artifacts
    foxes, total, _ = catalogue.browse(user, "outputs", "RED fox", page=1)
    assert total == sum(1 for n in range(THOUSANDS) if n % 10 and n % 2)
    assert all("red fox" in h.prompt for h in foxes)
    sdxl_whales, total, _ = catalogue.browse(user, "all", "whale demo-sdxl")
    assert total == sum(1 for n in range(THOUSANDS) if n % 10 and n % 2 == 0 and n % 3 == 0)
    assert {(h.model, "whale" in h.prompt) for h in sdxl_whales} == {("demo-sdxl", True)}
    one, total, _ = catalogue.browse(user, "all", "fox 1235")
    assert total == 1 and one[0].artifact_id == ids[THOUSANDS - 1 - 1235]
    assert catalogue.browse(user, "all", "50%_off") == ([], 0, 1)   # % and _ are letters here, not wildcards


def test_another_users_gallery_is_their_own(atelier, crowded):
    assert atelier.artifacts.browse(new_user(), "all") == ([], 0, 1)


def png(blobs, user, colour: int, **how):
    """A tiny PNG stored as `user`'s (an upload unless `how` says otherwise)."""
    import io

    import PIL.Image

    buffer = io.BytesIO()
    PIL.Image.new("RGB", (8, 8), (colour, 7, 7)).save(buffer, format="PNG")
    return store_artifact(blobs, buffer.getvalue(), owner=user, kind=how.pop("kind", "upload"), mime="image/png",
                          suffix=".png", width=8, height=8, **how)


def test_delete_takes_only_your_holding_and_keeps_bytes_others_hold(atelier):
    blobs, catalogue = atelier.service.blobs, atelier.artifacts
    alice, bob = new_user(), new_user()
    colour = uuid.uuid4().int % 200
    shared = png(blobs, alice, colour)
    png(blobs, bob, colour)                                  # the same bytes, uploaded by Bob too
    mine_only = png(blobs, alice, colour + 1)
    with pytest.raises(NotFound, match="No artifact"):
        catalogue.delete(bob, mine_only.id)                   # Alice's is "not found" to Bob
    assert blobs.exists(mine_only.blob_key)

    assert catalogue.delete(alice, shared.id) == []           # Bob still holds it: row and file stay
    assert blobs.exists(shared.blob_key) and Artifact.get_or_none(Artifact.id == shared.id) is not None
    assert [h.artifact_id for h in catalogue.browse(alice, "uploads")[0]] == [mine_only.id]
    assert [h.artifact_id for h in catalogue.browse(bob, "uploads")[0]] == [shared.id]
    with pytest.raises(NotFound):
        catalogue.delete(alice, shared.id)                    # gone from Alice's: deleting again is "not found"

    assert catalogue.delete(alice, mine_only.id) == [mine_only.id]   # nobody else: the row and the file go
    assert not blobs.exists(mine_only.blob_key) and Artifact.get_or_none(Artifact.id == mine_only.id) is None
    assert catalogue.delete(bob, shared.id) == [shared.id]
    assert not blobs.exists(shared.blob_key)


def test_delete_keeps_what_was_made_from_it_and_others_lineage(atelier):
    """Alice uploads a source and Bob the same bytes; each makes a child from it. Alice deletes the source, then
    her child: Bob's child still has its parent, and the source's file stays while Bob's child names it."""
    blobs, catalogue = atelier.service.blobs, atelier.artifacts
    alice, bob = new_user(), new_user()
    colour = uuid.uuid4().int % 200
    source = png(blobs, alice, colour)
    png(blobs, bob, colour)
    hers = png(blobs, alice, colour + 2, kind="image", seed=5, parents=((source.id, "upscale_of"),))
    his = png(blobs, bob, colour + 3, kind="image", seed=6, parents=((source.id, "source"),))
    catalogue.delete(alice, source.id)
    assert catalogue.artifact_info(bob, his.id)["parents"] == [{"artifact_id": source.id, "relation": "source"}]
    assert catalogue.artifact_info(alice, hers.id)["parents"] == []      # she no longer holds the source
    assert catalogue.delete(alice, hers.id) == [hers.id]
    assert Lineage.select().where(Lineage.child == his.id).count() == 1
    catalogue.delete(bob, source.id)
    assert blobs.exists(source.blob_key)                     # nobody holds it, but Bob's child was made from it
    assert catalogue.artifact_info(bob, his.id)["parents"] == []


def test_download_is_the_stored_bytes_with_a_readable_name(atelier):
    blobs, catalogue = atelier.service.blobs, atelier.artifacts
    user = new_user()
    made = png(blobs, user, uuid.uuid4().int % 200, kind="image", seed=42)
    data, name = catalogue.download(user, made.id)
    assert data == blobs.get(made.blob_key) and name == f"atelier-42-{made.id[:12]}.png"
    with pytest.raises(NotFound):
        catalogue.download(new_user(), made.id)


def test_search_fields_read_the_step_that_made_it():
    plan = ('{"steps": [{"id": "n1", "kind": "txt2img", "prompt": "a fox", "model": {"id": "demo-sd15"}},'
            ' {"id": "up", "kind": "upscale", "model": null}]}')
    assert search_fields(plan, "n1") == ("a fox", "demo-sd15")
    assert search_fields(plan, "up") == ("a fox", "demo-sd15")     # an upscale: the picture's prompt and model
    assert search_fields("not json", "n1") == ("", "")


def test_deleting_a_video_takes_its_poster_with_it(atelier):
    blobs, catalogue = atelier.service.blobs, atelier.artifacts
    user = new_user()
    clip = store_artifact(blobs, b"\x00\x00\x00\x18ftypmp42" + uuid.uuid4().bytes, owner=user, kind="video",
                          mime=MP4_MIME, suffix=".mp4", width=8, height=8, frames=2, fps=8.0, seed=3)
    poster = png(blobs, user, uuid.uuid4().int % 200, kind="poster", seed=3, parents=((clip.id, "poster_of"),))
    assert [h.artifact_id for h in catalogue.browse(user, "videos")[0]] == [clip.id]    # the poster is not listed
    assert sorted(catalogue.delete(user, clip.id)) == sorted([clip.id, poster.id])
    assert not blobs.exists(clip.blob_key) and not blobs.exists(poster.blob_key)
    assert ArtifactOwner.select().where(ArtifactOwner.owner == user).count() == 0
