"""Accounts mode end to end: API keys, credits, ownership, tiers and rate limits, through gradio_client
against the app served on 127.0.0.1 (real SQLite, real Huey consumer)."""
import os
import uuid

import pytest
from gradio_client.exceptions import AppError

from auth.policy import Forbidden
from pipelines.errors import AtelierError, NotFound
from tests.conftest import api_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_an_api_key_acts_as_its_user(accounts_app, make_user):
    user, key = make_user(balance=10)
    client = api_client(accounts_app, key)
    me = client.predict(api_name="/account")
    assert (me["user_id"], me["email"], me["role"], me["tier"], me["balance"]) == \
        (user.id, user.email, "user", "free", 10)
    files, info = client.predict(prompt="a paid fox", api_name="/txt2img")
    assert info["credits"] == 0.5                       # 64x64 on SD1.5: the half-credit minimum
    assert client.predict(api_name="/account")["balance"] == 9.5


def ledger_race(url: str) -> dict:
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "tests.ledger_race", url], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(outcome: dict) -> dict:
    """What must hold after 50 racing 1-credit submissions against 10 credits, and their racing settles."""
    return {"accepted": outcome["accepted"], "refused": outcome["refused"], "codes": outcome["refusal_codes"],
            "unexpected": outcome["unexpected"], "left while queued": outcome["balance_while_queued"],
            "ledger == running == expected balance": outcome["balance"] == outcome["running_balance"]
            == outcome["expected_balance"] >= 0, "unfinished": outcome["unfinished"],
            "reserves, settles, jobs": (outcome["reserves"], outcome["settles"], outcome["jobs"])}


NO_OVERSPENDING = {"accepted": 10, "refused": 40, "codes": ["insufficient_credits"], "unexpected": [],
                   "left while queued": 0, "ledger == running == expected balance": True, "unfinished": 0,
                   "reserves, settles, jobs": (10, 10, 10)}     # every reservation settled exactly once


def test_concurrent_submissions_never_overspend_on_sqlite(tmp_path):
    assert summary(ledger_race(f"sqlite:///{tmp_path / 'race.db'}")) == NO_OVERSPENDING


def test_concurrent_submissions_never_overspend_on_postgresql(postgres_url):
    assert summary(ledger_race(postgres_url)) == NO_OVERSPENDING


def test_no_key_a_bad_key_and_a_revoked_key_are_refused(accounts_app, make_user):
    from gradio_client import Client
    from gradio_client.exceptions import AppError, AuthenticationError
    refused = f"Could not load {accounts_app.url} as credentials were not provided"
    with pytest.raises(AuthenticationError, match=refused):
        Client(accounts_app.url, verbose=False)
    not_valid = "This API key is not valid"                  # a bad key is told so, not "no credentials"
    with pytest.raises(AppError, match=not_valid):
        api_client(accounts_app, "atl_not-a-real-key").predict(api_name="/account")
    user, key = make_user()
    client = api_client(accounts_app, key)
    assert client.predict(api_name="/account")["user_id"] == user.id
    [listed] = accounts_app.account.keys(user)
    assert key.startswith(listed["prefix"]) and len(listed["prefix"]) < len(key)
    assert key not in str(listed)                           # only the prefix is kept in the clear
    accounts_app.account.revoke_key(user, listed["id"])
    with pytest.raises(AppError, match=not_valid):           # the client was let in before; now its calls are not
        client.predict(api_name="/account")


@pytest.fixture
def someone_elses_work(accounts_app, make_user):
    """An account with a finished job, its image and an upload; returns (owner, job info)."""
    owner, key = make_user(balance=10)
    files, info = api_client(accounts_app, key).predict(prompt="mine only", seed=3, api_name="/txt2img")
    return owner, info


@pytest.mark.parametrize("endpoint, name", [("/job_status", "job_id"), ("/cancel_job", "job_id"),
                                            ("/artifact_info", "artifact_id"), ("/replay", "artifact_id")])
def test_another_users_ids_are_not_found(accounts_app, make_user, someone_elses_work, endpoint, name):
    _, info = someone_elses_work
    _, key = make_user(balance=10)
    value = info["job_id"] if name == "job_id" else info["artifact_ids"][0]
    with pytest.raises(AppError, match=f"No (job|artifact) '{value}'"):
        api_client(accounts_app, key).predict(api_name=endpoint, **{name: value})


def test_another_users_artifacts_cannot_be_used_or_shared(accounts_app, make_user, someone_elses_work):
    import json
    owner, info = someone_elses_work
    stranger, key = make_user(balance=10)
    theirs = info["artifact_ids"][0]
    spec = {"nodes": [{"id": "in", "kind": "load_image", "params": {"artifact_id": theirs}},
                      {"id": "out", "kind": "img2img", "params": {"prompt": "x"}, "inputs": {"image": ["in", "image"]}}]}
    with pytest.raises(AppError, match="No image"):
        api_client(accounts_app, key).predict(spec=json.dumps(spec), api_name="/submit")
    with pytest.raises(NotFound, match=f"No artifact '{theirs}'"):
        accounts_app.account.share(stranger, [theirs])
    [owners_key] = accounts_app.account.keys(owner)
    with pytest.raises(NotFound, match=f"No API key {owners_key['id']!r}"):
        accounts_app.account.revoke_key(stranger, owners_key["id"])
    assert accounts_app.account.keys(owner)[0]["revoked"] is False
    assert all(j["job_id"] != info["job_id"] for j in api_client(accounts_app, key).predict(api_name="/jobs"))


def test_an_admin_sees_every_account(accounts_app, make_user, someone_elses_work):
    owner, info = someone_elses_work
    admin, key = make_user(role="admin")
    status = api_client(accounts_app, key).predict(job_id=info["job_id"], api_name="/job_status")
    assert status["status"] == "succeeded" and status["artifact_ids"] == info["artifact_ids"]
    [row] = accounts_app.account.admin.users(admin, search=owner.email)
    assert (row["jobs"], row["credits_spent"], row["balance"]) == (1, 0.5, 9.5)
    with pytest.raises(Forbidden, match="Only admins may do that"):
        accounts_app.account.admin.users(owner)


def test_an_admin_refunds_a_succeeded_job_once(accounts_app, make_user, someone_elses_work):
    from auth import credits
    owner, info = someone_elses_work
    admin, _ = make_user(role="admin", api_key=False)
    with pytest.raises(Forbidden, match="Only admins may do that"):
        accounts_app.account.admin.refund(owner, info["job_id"])
    assert accounts_app.account.admin.refund(admin, info["job_id"], "blurry") == 0.5
    assert credits.balance(owner) == 10
    with pytest.raises(AtelierError, match=f"Job {info['job_id']} was refunded already") as raised:
        accounts_app.account.admin.refund(admin, info["job_id"])
    assert raised.value.code == "refunded"
    assert credits.balance(owner) == 10
    assert [e["kind"] for e in accounts_app.account.ledger(owner)][:3] == ["refund", "capture", "reserve"]
    assert accounts_app.account.audit_log(admin)[0]["action"] == "refund_job"


def spec_json(**params) -> str:
    import json
    return json.dumps({"nodes": [{"id": "1", "kind": "txt2img", "params": {"prompt": "x", **params}}]})


def test_rate_limits_are_hit_with_a_wait_time_and_recover(accounts_app, make_user, monkeypatch):
    """Tier "limited": 3 generations per hour, 6 API calls per minute."""
    import time
    user, key = make_user(tier="limited", balance=50)
    client = api_client(accounts_app, key)
    for seed in range(3):
        client.predict(spec=spec_json(seed=seed), api_name="/submit")
    with pytest.raises(AppError, match=r"allows 3 generations per hour; try again in (\d+) s") as refused:
        client.predict(spec=spec_json(), api_name="/submit")
    import re
    assert 3500 < int(re.search(r"try again in (\d+) s", str(refused.value)).group(1)) <= 3600
    client.predict(api_name="/account")
    client.predict(api_name="/account")                    # the 6th call this minute
    with pytest.raises(AppError, match=r"allows 6 API calls per minute; try again in \d+ s"):
        client.predict(api_name="/account")
    assert len(accounts_app.service.recent(user)) == 3      # the refused submission stored nothing
    policy = accounts_app.service.policy
    monkeypatch.setattr(policy, "clock", lambda: time.time() + 3601)   # an hour later
    assert client.predict(spec=spec_json(), api_name="/submit")["job_id"]


def test_tier_limits_resolution_and_viewers_cannot_generate(accounts_app, make_user):
    _, free = make_user(balance=10)
    with pytest.raises(AppError, match="Your free tier makes images up to 512 px per side"):
        api_client(accounts_app, free).predict(spec=spec_json(width=768, height=768), api_name="/quote")
    _, standard = make_user(tier="standard", balance=10)
    assert api_client(accounts_app, standard).predict(spec=spec_json(width=768, height=768),
                                                      api_name="/quote")["credits"] == 2.5
    viewer, key = make_user(role="viewer", balance=10)
    client = api_client(accounts_app, key)
    with pytest.raises(AppError, match="can browse but not generate"):
        client.predict(prompt="x", api_name="/txt2img")
    assert client.predict(api_name="/account")["balance"] == 10 and client.predict(api_name="/jobs") == []


def test_higher_tiers_start_first_and_users_take_turns(accounts_app, make_user, tmp_path):
    """Jobs on a queue no consumer reads yet: the order they come off is the order they would start."""
    from pipelines.spec import Txt2Img, WorkflowSpec
    from queueing import JobService, make_huey, register_tasks
    huey = make_huey(f"sqlite:///{tmp_path / 'paused.db'}", tmp_path)
    run_job = register_tasks(huey, None)
    service = JobService(accounts_app.service.compiler, lambda job_id, priority: run_job(job_id, priority=priority),
                         accounts_app.service.blobs, policy=accounts_app.service.policy)
    busy, patient, paying = (make_user(balance=50)[0], make_user(balance=50)[0], make_user(tier="pro", balance=50)[0])
    spec = WorkflowSpec.single(Txt2Img(prompt="queued"))
    owner_of = {}
    for user in [busy] * 10 + [patient, paying]:
        owner_of[service.submit(user, spec).id] = user.email
    order = []
    while (message := huey.dequeue()) is not None:
        order.append(owner_of[message.args[0]])
    assert len(order) == 12
    assert order[0] == paying.email                          # pro before free
    assert order.index(patient.email) <= 2                   # not behind the other user's ten
    assert order[1:].count(busy.email) == 10


def test_a_users_own_jobs_start_in_the_order_they_were_sent(accounts_app, make_user, tmp_path):
    """One user, many concurrent callers: as the user's backlog drains, a job sent now must not overtake
    one they sent earlier, when more were waiting (it starved for as long as they kept sending)."""
    from pipelines.spec import Txt2Img, WorkflowSpec
    from queueing import JobService, make_huey, register_tasks
    from storage.models import Job
    huey = make_huey(f"sqlite:///{tmp_path / 'paused.db'}", tmp_path)
    run_job = register_tasks(huey, None)
    service = JobService(accounts_app.service.compiler, lambda job_id, priority: run_job(job_id, priority=priority),
                         accounts_app.service.blobs, policy=accounts_app.service.policy)
    user, other = make_user(balance=50)[0], make_user(balance=50)[0]
    spec = WorkflowSpec.single(Txt2Img(prompt="in order"))
    sent = [service.submit(user, spec).id for _ in range(4)]
    Job.update(status="succeeded").where(Job.id.in_(sent[:2])).execute()      # two of them ran meanwhile
    sent += [service.submit(user, spec).id for _ in range(2)]
    first_of_other = service.submit(other, spec).id
    order = []
    while (message := huey.dequeue()) is not None:
        if message.args[0] not in sent[:2]:
            order.append(message.args[0])
    mine = [job_id for job_id in order if job_id != first_of_other]
    assert mine == sent[2:]                                   # the user's own, in the order sent
    assert order.index(first_of_other) == 0                   # another user still takes their turn at once


def test_failed_and_cancelled_jobs_give_the_credits_back(accounts_app, make_user):
    import json
    user, key = make_user(balance=10)
    client = api_client(accounts_app, key)
    slow = json.dumps({"nodes": [{"kind": "txt2img", "params": {"prompt": "slow", "steps": 150, "width": 256,
                                                                 "height": 256}}]})
    job_id = client.predict(spec=slow, api_name="/submit")["job_id"]
    assert client.predict(api_name="/account")["balance"] == 9.5         # reserved at submit
    client.predict(job_id=job_id, api_name="/cancel_job")
    done = accounts_app.service.wait(user, job_id, timeout=60)
    assert done.status == "cancelled"
    assert client.predict(api_name="/account")["balance"] == 10           # released
    kinds = [e["kind"] for e in accounts_app.account.ledger(user)]
    assert kinds[:2] == ["release", "reserve"]
    too_dear = json.dumps({"nodes": [{"id": n, "kind": "txt2img", "params": {"prompt": n, "width": 512, "height": 512,
                                                                      "batch_size": 8}} for n in ("a", "b")]})
    with pytest.raises(AppError, match="This costs 16 credits and you have 10"):
        client.predict(spec=too_dear, api_name="/submit")
    assert len(accounts_app.service.recent(user)) == 1                   # nothing stored for it


def test_cli_creates_an_admin_whose_key_works(accounts_app, settings):
    import subprocess
    import sys
    email = f"first-admin-{uuid.uuid4().hex[:6]}@test.example"
    env = {**os.environ, "ATELIER_DATA_DIR": str(settings.data_dir)}
    out = subprocess.run([sys.executable, "-m", "auth.cli", "create-user", email, "--password", "long enough pw",
                          "--role", "admin", "--tier", "pro", "--credits", "50", "--api-key"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("atl_")
    me = api_client(accounts_app, key).predict(api_name="/account")
    assert (me["email"], me["role"], me["tier"]) == (email, "admin", "pro")
    assert me["balance"] == 5050                 # pro's monthly 5,000 (configs/tiers.toml) + 50
    again = subprocess.run([sys.executable, "-m", "auth.cli", "create-user", email], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert again.returncode == 2 and "already an account" in again.stderr


def test_share_links_show_the_image_to_anyone_until_revoked(accounts_app, make_user):
    import hashlib

    import httpx
    user, key = make_user(balance=10)
    files, info = api_client(accounts_app, key).predict(prompt="shared lighthouse", seed=7, api_name="/txt2img")
    artifact_id = info["artifact_ids"][0]
    token = accounts_app.account.share(user, [artifact_id], show_recipe=True)
    assert len(token) >= 40
    with httpx.Client(base_url=accounts_app.url) as anyone:             # no cookie, no key
        page = anyone.get(f"/share/{token}")
        assert page.status_code == 200
        assert f"/share/{token}/file/{artifact_id}" in page.text and "shared lighthouse" in page.text
        assert "Make your own" in page.text
        image = anyone.get(f"/share/{token}/file/{artifact_id}")
        assert image.headers["content-type"] == "image/png"
        assert hashlib.sha256(image.content).hexdigest() == artifact_id
        assert anyone.get(f"/share/{token[:-2]}xx").status_code == 404
        assert anyone.get(f"/share/{token}/file/{'0' * 64}").status_code == 404
        [listed] = accounts_app.account.shares(user)
        assert listed["artifact_ids"] == [artifact_id] and not listed["revoked"]
        accounts_app.account.revoke_share(user, listed["id"])
        assert anyone.get(f"/share/{token}").status_code == 404
        assert anyone.get(f"/share/{token}/file/{artifact_id}").status_code == 404
    hidden = accounts_app.account.share(user, [artifact_id], show_recipe=False)
    with httpx.Client(base_url=accounts_app.url) as anyone:
        assert "shared lighthouse" not in anyone.get(f"/share/{hidden}").text


def test_gradio_file_route_serves_a_stored_file_only_to_its_holders(accounts_app, make_user, someone_elses_work):
    import httpx
    owner, info = someone_elses_work
    path = accounts_app.artifacts.artifact_path(accounts_app.artifacts.artifact(owner, info["artifact_ids"][0]))
    owners_key = api_client_key(accounts_app, owner)
    _, strangers_key = make_user()
    with httpx.Client(base_url=accounts_app.url) as http:
        url = f"/gradio_api/file={path}"
        assert http.get(url, headers={"Authorization": f"Bearer {strangers_key}"}).status_code == 404
        assert http.get(url).status_code in (401, 404)
        mine = http.get(url, headers={"Authorization": f"Bearer {owners_key}"})
        assert mine.status_code == 200 and mine.content == open(path, "rb").read()


def api_client_key(app, user) -> str:
    from auth import api_keys
    return api_keys.create_key(user, "test")[1]


def test_prune_guests_deletes_only_old_guests_that_made_nothing(accounts_app, settings):
    import subprocess
    import sys

    from storage.models import User
    accounts = accounts_app.web_auth.accounts
    old_idle, old_busy, new_idle = (accounts.create_guest() for _ in range(3))
    accounts_app.service.submit(old_busy, spec_from_json(spec_json(seed=1)))
    User.update(created_at=User.created_at - 3 * 86400).where(User.id.in_([old_idle.id, old_busy.id])).execute()
    out = subprocess.run([sys.executable, "-m", "auth.cli", "prune-guests", "--days", "2"], cwd=ROOT,
                         env={**os.environ, "ATELIER_DATA_DIR": str(settings.data_dir)}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "deleted 1 guest(s)" in out.stdout
    remaining = {u.id for u in User.select().where(User.id.in_([old_idle.id, old_busy.id, new_idle.id]))}
    assert remaining == {old_busy.id, new_idle.id}


def spec_from_json(text: str):
    from pipelines.spec import WorkflowSpec
    return WorkflowSpec.from_json(text)
