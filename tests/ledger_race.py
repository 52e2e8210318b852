"""`python -m tests.ledger_race DATABASE_URL`: the credit ledger under concurrency, on a real database.

50 threads submit a 1-credit job at once against a balance of 10 through JobService (compile, reserve
and job row in one transaction), then every accepted job is settled by two racing threads (a worker
finishing it and a person cancelling it). Prints the outcome as JSON for tests/test_accounts.py.
A subprocess, so that it can open its own database (the app's is process-wide).
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
import uuid

from auth import credits
from auth.accounts import Accounts
from auth.policy import Policy
from configs import CreditPrices, Limits, Tier, Tiers, load_models, load_styles
from configs.settings import CONFIG_DIR
from pipelines.compiler import Compiler
from pipelines.errors import AtelierError
from pipelines.model_hashes import ModelHasher
from pipelines.spec import Txt2Img, WorkflowSpec
from queueing import settlement
from queueing.service import JobService
from storage.blobs import LocalBlobStore
from storage.db import open_database
from storage.models import CreditEntry, Job, User

SUBMISSIONS, BALANCE = 50, 10


def run_all(target, count: int) -> list:
    """Run target(i) in `count` threads released together; returns their results (or exceptions)."""
    barrier, results = threading.Barrier(count), [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as e:          # noqa: BLE001 - reported, not hidden
            results[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main(url: str) -> None:
    open_database(url)
    tiers = Tiers(tiers=(Tier(name="metered"),), prices=CreditPrices())
    with tempfile.TemporaryDirectory() as folder:
        compiler = Compiler(load_models(CONFIG_DIR / "models.toml"), load_styles(CONFIG_DIR / "styles.toml"), Limits(),
                            tiers.prices, ModelHasher(folder))
        service = JobService(compiler, lambda job_id, priority: None, LocalBlobStore(folder), policy=Policy(tiers))
        user = Accounts(tiers).create_user(f"race-{uuid.uuid4().hex[:8]}@test.example")
        credits.grant(user, BALANCE, f"race:{user.id}")
        spec = WorkflowSpec.single(Txt2Img(prompt="race", width=512, height=512))

        submitted = run_all(lambda i: service.submit(user, spec).id, SUBMISSIONS)
        accepted = [r for r in submitted if isinstance(r, str)]
        refused = [r for r in submitted if isinstance(r, AtelierError)]
        unexpected = [repr(r) for r in submitted if not isinstance(r, (str, AtelierError))]
        balance_while_queued = credits.balance(user)

        def settle(i):
            job_id = accepted[i // 2]
            if i % 2:
                return settlement.cancel(job_id)
            return settlement.finish(job_id, "succeeded" if (i // 2) % 3 else "failed")
        run_all(settle, 2 * len(accepted))

        jobs = list(Job.select().where(Job.owner == user))
        entries = list(CreditEntry.select().where(CreditEntry.user == user))
        captured = sum(j.credits for j in jobs if j.status == "succeeded")
        print(json.dumps({
            "accepted": len(accepted), "refused": len(refused), "unexpected": unexpected,
            "refusal_codes": sorted({e.code for e in refused}),
            "balance_while_queued": balance_while_queued, "balance": credits.balance(user),
            "running_balance": User.get_by_id(user.id).balance, "expected_balance": BALANCE - captured,
            "jobs": len(jobs), "unfinished": sum(j.status not in ("succeeded", "failed", "cancelled") for j in jobs),
            "reserves": sum(e.kind == "reserve" for e in entries),
            "settles": sum(e.key.startswith("settle:") for e in entries),
        }))


if __name__ == "__main__":
    main(sys.argv[1])
