"""Generation limits (issue 11, item 8): the hourly allowance holds under concurrent submissions on SQLite
and PostgreSQL, a workflow uses one generation per step that makes images or video, and a workflow (or a
replayed plan) with more nodes than the tier or the global [limits] allow is refused before anything is
stored."""
import io
import json
import os
import re
import subprocess
import sys

import pytest
from gradio_client.exceptions import AppError

from tests.conftest import api_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE_LIMITED = re.compile(r"Your free tier allows 10 generations per hour; try again in (\d+) s\.")


def hourly_race(url: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.hourly_race", url], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(outcome: dict) -> dict:
    """What must hold after 30 racing one-image submissions by a user allowed 10 an hour."""
    matches = [RATE_LIMITED.fullmatch(message) for message in outcome["messages"]]
    waits = [int(m.group(1)) for m in matches if m] + outcome["retry_after"]
    return {**{k: outcome[k] for k in ("accepted", "refused", "unexpected", "refusal_codes", "jobs", "generations",
                                       "reserves")},
            "every refusal says to wait about an hour": bool(matches) and all(matches)
            and all(3500 < wait <= 3600 for wait in waits)}


EXACTLY_THE_ALLOWANCE = {"accepted": 10, "refused": 20, "unexpected": [], "refusal_codes": ["rate_limited"],
                         "jobs": 10, "generations": 10, "reserves": 10,
                         "every refusal says to wait about an hour": True}


def test_concurrent_submissions_stay_within_the_hourly_limit_on_sqlite(tmp_path):
    assert summary(hourly_race(f"sqlite:///{tmp_path / 'race.db'}")) == EXACTLY_THE_ALLOWANCE


def test_concurrent_submissions_stay_within_the_hourly_limit_on_postgresql(postgres_url):
    assert summary(hourly_race(postgres_url)) == EXACTLY_THE_ALLOWANCE


def png(width: int = 64, height: int = 64) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(out, format="PNG")
    return out.getvalue()


def workflow(*nodes: dict) -> str:
    return json.dumps({"nodes": list(nodes)})


def node(node_id: str, kind: str, source: str = "", output: str = "images", **params) -> dict:
    inputs = {"video" if output == "video" else "image": [source, output]} if source else {}
    return {"id": node_id, "kind": kind, "params": params, **({"inputs": inputs} if inputs else {})}


def test_a_workflow_uses_one_generation_per_step_that_makes_images(accounts_app, make_user):
    """Tier "limited": 3 generations per hour. Loading an image is free; img2img and upscale use one each;
    a workflow that makes more than the hour allows is refused outright."""
    from storage.models import Job
    user, key = make_user(tier="limited", balance=50)
    photo = accounts_app.service.upload(user, png())
    two = workflow(node("photo", "load_image", artifact_id=photo.id),
                   node("redo", "img2img", "photo", "image", prompt="ink", seed=1),
                   node("big", "upscale", "redo", scale=2.0))
    client = api_client(accounts_app, key)
    four = workflow(node("1", "txt2img", prompt="fox", seed=1),
                    *(node(str(k), "upscale", str(k - 1)) for k in (2, 3, 4)))
    with pytest.raises(AppError, match=r"This workflow makes 4 generations and your limited tier allows 3 per hour; "
                                       r"split it into smaller workflows"):
        client.predict(spec=four, api_name="/submit")       # never fits, however long one waits
    first = client.predict(spec=two, api_name="/submit")["job_id"]
    assert Job.get_by_id(first).generations == 2
    with pytest.raises(AppError, match=r"Your limited tier allows 3 generations per hour; try again in (\d+) s\. "
                                       r"This workflow counts as 2\."):
        client.predict(spec=two, api_name="/submit")          # 2 used + 2 > 3
    one = workflow(node("1", "txt2img", prompt="fox", seed=2))
    second = client.predict(spec=one, api_name="/submit")["job_id"]       # 2 + 1 = 3: still allowed
    assert Job.get_by_id(second).generations == 1
    with pytest.raises(AppError, match=r"allows 3 generations per hour; try again in \d+ s\.$"):
        client.predict(spec=one, api_name="/submit")
    assert sorted(j.id for j in Job.select().where(Job.owner == user)) == sorted([first, second])
    for job_id in (first, second):
        assert accounts_app.service.wait(user, job_id, timeout=300).status == "succeeded"


def test_a_workflow_over_the_tiers_node_limit_is_refused_and_nothing_is_stored(accounts_app, make_user):
    """Tier "limited" runs workflows of up to 4 nodes: a fifth is refused, whether sent as a workflow,
    quoted, or replayed as a plan, and neither a job row nor a ledger entry is written."""
    from auth import credits
    from pipelines.spec import WorkflowSpec
    from storage.models import CreditEntry, Job
    user, key = make_user(tier="limited", balance=50)
    ledger = [(e.kind, e.amount, e.key) for e in credits.history(user)]
    five = workflow(node("1", "txt2img", prompt="fox", seed=1), node("2", "img2img", "1", prompt="ink"),
                    node("3", "img2img", "2", prompt="ink"), node("4", "upscale", "3"), node("5", "upscale", "4"))
    message = r"Your limited tier runs workflows of up to 4 nodes; this one has 5\. Split it into smaller workflows"
    client = api_client(accounts_app, key)
    with pytest.raises(AppError, match=message):
        client.predict(spec=five, api_name="/submit")
    with pytest.raises(AppError, match=message):
        client.predict(spec=five, api_name="/quote")
    from pipelines.errors import InvalidRequest
    plan = accounts_app.service.compiler.compile(WorkflowSpec.from_json(five))   # no tier: 5 is within [limits]
    with pytest.raises(InvalidRequest, match=message) as refused:
        accounts_app.service.submit_plan(user, plan)
    assert (refused.value.code, refused.value.field) == ("tier_max_nodes", "nodes")
    assert Job.select().where(Job.owner == user).count() == 0
    assert [(e.kind, e.amount, e.key) for e in credits.history(user)] == ledger
    assert CreditEntry.select().where(CreditEntry.user == user).count() == len(ledger)
    assert credits.balance(user) == 50


def test_the_global_node_limit_applies_to_every_tier(tmp_path):
    """[limits] max_nodes caps every workflow; a tier's own cap only ever lowers it."""
    from configs import CreditPrices, Limits, load_models, load_styles
    from configs.settings import CONFIG_DIR
    from pipelines.compiler import Compiler
    from pipelines.errors import InvalidRequest
    from pipelines.spec import WorkflowSpec
    compiler = Compiler(load_models(CONFIG_DIR / "models.toml"), load_styles(CONFIG_DIR / "styles.toml"),
                        Limits(max_nodes=3), CreditPrices(), lambda entry: "0" * 64)
    four = WorkflowSpec.from_json(workflow(node("1", "txt2img", prompt="fox"), node("2", "upscale", "1"),
                                           node("3", "upscale", "2"), node("4", "upscale", "3")))
    for tier_max_nodes in (0, 10):                           # no tier cap, or one above the global limit
        with pytest.raises(InvalidRequest, match=r"A workflow may have up to 3 nodes; this one has 4\.") as refused:
            compiler.compile(four, tier="enterprise", tier_max_nodes=tier_max_nodes)
        assert (refused.value.code, refused.value.field) == ("too_many_nodes", "nodes")
    three = WorkflowSpec(nodes=four.nodes[:3])
    assert len(compiler.compile(three, tier="enterprise").steps) == 3
