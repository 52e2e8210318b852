"""`python -m tests.hourly_race DATABASE_URL`: the hourly generation limit under concurrency, on a real database.

30 threads, released together, each submit a one-image job through JobService for one user of a tier
allowed 10 generations per hour (and credits for all 30), so only the hourly count stands in their way.
Prints the outcome as JSON for tests/test_limits.py. A subprocess, so that it can open its own database
(the app's is process-wide).
"""
from __future__ import annotations

import json
import sys
import tempfile
import uuid

from auth import credits
from auth.accounts import Accounts
from auth.policy import RateLimited, Policy
from configs import CreditPrices, Limits, Tier, Tiers, load_models, load_styles
from configs.settings import CONFIG_DIR
from pipelines.compiler import Compiler
from pipelines.errors import AtelierError
from pipelines.model_hashes import ModelHasher
from pipelines.spec import Txt2Img, WorkflowSpec
from queueing.service import JobService
from storage.blobs import LocalBlobStore
from storage.db import open_database
from storage.models import CreditEntry, Job
from tests.ledger_race import run_all

SUBMISSIONS, PER_HOUR = 30, 10


def main(url: str) -> None:
    open_database(url)
    tiers = Tiers(tiers=(Tier(name="free", generations_per_hour=PER_HOUR),), prices=CreditPrices())
    with tempfile.TemporaryDirectory() as folder:
        compiler = Compiler(load_models(CONFIG_DIR / "models.toml"), load_styles(CONFIG_DIR / "styles.toml"), Limits(),
                            tiers.prices, ModelHasher(folder))
        service = JobService(compiler, lambda job_id, priority: None, LocalBlobStore(folder), policy=Policy(tiers))
        user = Accounts(tiers).create_user(f"hourly-{uuid.uuid4().hex[:8]}@test.example")
        credits.grant(user, 10 * SUBMISSIONS, f"race:{user.id}")   # never the limit here
        spec = WorkflowSpec.single(Txt2Img(prompt="race", width=512, height=512))

        submitted = run_all(lambda i: service.submit(user, spec).id, SUBMISSIONS)
        accepted = [r for r in submitted if isinstance(r, str)]
        refused = [r for r in submitted if isinstance(r, AtelierError)]
        jobs = list(Job.select().where(Job.owner == user))
        print(json.dumps({
            "accepted": len(accepted), "refused": len(refused),
            "unexpected": [repr(r) for r in submitted if not isinstance(r, (str, AtelierError))],
            "refusal_codes": sorted({e.code for e in refused}),
            "messages": sorted({e.message for e in refused}),
            "retry_after": sorted({e.retry_after for e in refused if isinstance(e, RateLimited)}),
            "jobs": len(jobs), "generations": sum(j.generations for j in jobs),
            "reserves": CreditEntry.select().where((CreditEntry.user == user)
                                                   & (CreditEntry.kind == "reserve")).count(),
            "balance": credits.balance(user),
        }))


if __name__ == "__main__":
    main(sys.argv[1])
