"""Replay obeys every rule a new request obeys (issue 18), in accounts mode through gradio_client.

A replay is a submission of the recipe's plan: it may load only the caller's own inputs (a PNG whose
recipe loads another user's private upload is refused, naming the input), it is priced and charged,
and the tier's size limit and hourly allowance apply. An identical request is served from the
caller's stored outputs at the tier's reuse_cost, and a request's every seed derives from its seed.
"""
import json

import PIL.Image
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from tests.conftest import api_client


def png_file(tmp_path, name: str, colour) -> str:
    path = tmp_path / name
    PIL.Image.new("RGB", (64, 64), colour).save(path)
    return str(path)


def stored_bytes(app, artifact_id: str) -> bytes:
    from storage.models import Artifact

    return app.service.blobs.get(Artifact.get_by_id(artifact_id).blob_key)


def ledger(user) -> list:
    from auth import credits

    return [(e.kind, e.amount, e.key) for e in credits.history(user)]


def jobs_of(user) -> list[str]:
    from storage.models import Job

    return sorted(j.id for j in Job.select().where(Job.owner == user))


@pytest.fixture
def alice_upscaled(accounts_app, make_user, tmp_path):
    """A uploaded a private picture to /upscale (an upscaler model, 3 credits). Returns (A, A's client, the
    upload's id, A's upscale info)."""
    a, key = make_user(balance=20)
    alice = api_client(accounts_app, key)
    _, info = alice.predict(image=handle_file(png_file(tmp_path, "secret.png", (200, 30, 60))), scale=2.0,
                            upscaler="demo-upscaler-x4", seed=5, api_name="/upscale")
    return a, alice, loaded_image(info), info


def loaded_image(info: dict) -> str:
    """The artifact id a job's plan loads (the upload it was made from)."""
    from storage.models import Job

    plan = json.loads(Job.get_by_id(info["job_id"]).plan)
    return next(step["artifact_id"] for step in plan["steps"] if step["kind"] == "load_image")


def test_a_file_whose_recipe_loads_another_users_upload_is_refused_and_stores_nothing(accounts_app, make_user,
                                                                                     alice_upscaled, tmp_path):
    _, _, secret, info = alice_upscaled
    b, key = make_user(balance=20)
    bob = api_client(accounts_app, key)
    made = stored_bytes(accounts_app, info["artifact_ids"][0])       # B has A's PNG (a share link, say)
    held = accounts_app.service.upload(b, made)                      # and uploaded it
    before_jobs, before_ledger = jobs_of(b), ledger(b)
    refusal = rf"The recipe loads the image {secret[:16]}… \(step '.*'\), which you do not have here\. Upload that image"
    with pytest.raises(AppError, match=refusal):
        bob.predict(artifact_id=held.id, api_name="/replay")
    path = tmp_path / "theirs.png"
    path.write_bytes(made)
    with pytest.raises(AppError, match=refusal):                     # sent as a file: refused, and not stored
        bob.predict(file=handle_file(str(path)), api_name="/replay")
    assert jobs_of(b) == before_jobs and ledger(b) == before_ledger
    _, theirs = bob.predict(artifact_id=held.id, api_name="/artifact_info")
    assert theirs["children"] == [] and theirs["kind"] == "upload"
    with pytest.raises(AppError, match="No artifact"):
        bob.predict(artifact_id=secret, api_name="/artifact_info")

    # With the same picture of B's own, the same recipe is B's request like any other.
    bob.predict(image=handle_file(png_file(tmp_path, "mine.png", (200, 30, 60))), scale=2.0, api_name="/upscale")
    _, outcome = bob.predict(artifact_id=held.id, api_name="/replay")
    assert (outcome["artifact_id"], outcome["identical"]) == (held.id, True)


def test_a_replay_is_charged_like_the_request(accounts_app, alice_upscaled):
    from auth import credits
    from storage.models import Job

    a, alice, _, info = alice_upscaled
    assert info["credits"] == 3.0
    before = credits.balance(a)
    _, outcome = alice.predict(artifact_id=info["artifact_ids"][0], api_name="/replay")
    assert outcome["identical"] is True and outcome["verdict"].startswith("**Identical:**")
    assert Job.get_by_id(outcome["job_id"]).credits == 3.0
    assert credits.balance(a) == before - 3.0
    assert ("capture", 0.0, f"settle:{outcome['job_id']}") in ledger(a)


def test_a_replay_over_the_tiers_size_is_refused_before_anything_is_stored(accounts_app, make_user):
    from auth import credits
    from storage.models import User

    user, key = make_user(balance=50, tier="standard")
    client = api_client(accounts_app, key)
    _, made = client.predict(prompt="a wide field", width=576, height=576, steps=1, seed=9, api_name="/txt2img")
    User.update(tier="free").where(User.id == user.id).execute()
    before_jobs, balance = jobs_of(user), credits.balance(user)
    with pytest.raises(AppError, match=r"Your free tier makes images up to 512 px per side; step '1' would make "
                                       r"576x576"):
        client.predict(artifact_id=made["artifact_ids"][0], api_name="/replay")
    assert jobs_of(user) == before_jobs and credits.balance(user) == balance


def test_replays_count_against_the_hourly_allowance(accounts_app, make_user):
    user, key = make_user(balance=50, tier="limited")         # 3 generations per hour
    client = api_client(accounts_app, key)
    _, made = client.predict(prompt="a bell", steps=1, seed=21, api_name="/txt2img")
    for _ in range(2):
        client.predict(artifact_id=made["artifact_ids"][0], api_name="/replay")
    with pytest.raises(AppError, match=r"allows 3 generations per hour"):
        client.predict(artifact_id=made["artifact_ids"][0], api_name="/replay")


def test_an_identical_request_is_served_from_stored_outputs_at_the_tiers_reuse_cost(accounts_app, make_user):
    """Tier "free" has reuse_cost 0.5: the second identical request costs half, runs on no worker, and
    returns the first one's artifacts; a request that differs in its seed runs."""
    from auth import credits
    from storage.models import Job

    user, key = make_user(balance=20)
    client = api_client(accounts_app, key)
    request = {"prompt": "a quiet harbour", "steps": 2, "seed": 77, "batch_size": 2, "api_name": "/txt2img"}
    _, first = client.predict(**request)
    balance = credits.balance(user)
    _, second = client.predict(**request)
    assert second["artifact_ids"] == first["artifact_ids"] and second["plan_hash"] == first["plan_hash"]
    assert second["job_id"] != first["job_id"] and second["credits"] == first["credits"] * 0.5
    assert credits.balance(user) == balance - first["credits"] * 0.5
    served = Job.get_by_id(second["job_id"])
    assert (served.status, served.worker, served.generations) == ("succeeded", "", 0)
    assert json.loads(served.result)["reused_from"] == first["job_id"]
    _, third = client.predict(**{**request, "seed": 78})
    assert Job.get_by_id(third["job_id"]).worker != "" and third["artifact_ids"] != first["artifact_ids"]


def test_every_seed_of_a_hires_fix_plan_derives_from_the_requests_seed(client):
    """The same hires-fix request twice is one plan; its upscaler model's seed is the request's."""
    from storage.models import Job

    request = {"prompt": "a tower", "steps": 2, "seed": 4242, "hires_fix": True, "hires_upscaler": "demo-upscaler-x4",
               "hires_steps": 2, "api_name": "/txt2img"}
    _, first = client.predict(**request)
    _, second = client.predict(**request)
    assert first["plan_hash"] == second["plan_hash"] and first["artifact_ids"] == second["artifact_ids"]
    steps = json.loads(Job.get_by_id(first["job_id"]).plan)["steps"]
    assert [step["seeds"] for step in steps] == [[4242], [4242], [4242]]


def test_a_lanczos_upscale_draws_no_seed(client, tmp_path):
    path = png_file(tmp_path, "plain.png", (10, 120, 90))
    _, first = client.predict(image=handle_file(path), scale=2.0, api_name="/upscale")
    _, second = client.predict(image=handle_file(path), scale=2.0, api_name="/upscale")
    assert first["plan_hash"] == second["plan_hash"] and first["artifact_ids"] == second["artifact_ids"]
    assert first["seeds"] == [None]                       # no noise, so no seed shown


def test_a_replay_on_another_thread_count_says_so(atelier, owner):
    """The same plan on one torch thread instead of two makes other bytes here (bench/determinism.py); the
    replay's verdict names the thread counts instead of guessing. The worker's count is [engine]
    torch_threads, which the worker thread sets before each job."""
    import torch

    from pipelines.spec import Txt2Img, WorkflowSpec

    service, backend = atelier.service, atelier.runner.backend
    configured = backend.threads
    try:
        backend.threads = 2
        made = service.wait(owner, service.submit(owner, WorkflowSpec.single(
            Txt2Img(prompt="a lantern", steps=2, seed=606, batch_size=2))).id, timeout=120)
        backend.threads = 1
        again = service.wait(owner, atelier.artifacts.replay(owner, made.artifact_ids[0]).id, timeout=120)
    finally:
        # The worker thread keeps the count it was last given, so give it torch's default back.
        backend.threads = configured or torch.get_num_threads()
    outcome = atelier.artifacts.replay_outcome(owner, again)
    assert outcome["differences"] == ["torch threads: 2 → 1"]
    assert not outcome["identical"] and outcome["artifact_id"] != made.artifact_ids[0]
    assert outcome["verdict"] == ("**Different:** the replay made other bytes. The environment differed: "
                                  "torch threads: 2 → 1.")
