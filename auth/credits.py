"""The credit ledger: append-only entries (grant, reserve, capture, release, refund), balance = their sum.

Every entry has a unique key, so retrying an operation (a webhook delivered twice, a job settled by
two workers) adds nothing the second time. `User.balance` is the running sum, changed in the same
transaction as each entry, so a reservation is one conditional UPDATE ("take N if at least N is
there"): concurrent submissions can never take a balance below zero, on SQLite or PostgreSQL, which
a read-then-write check cannot promise.

Reserve and settle are called inside the caller's transaction (with the job row); the others open
their own.
"""
from __future__ import annotations

import datetime
import time

from peewee import IntegrityError, fn

from pipelines.errors import AtelierError
from storage.db import database
from storage.models import CreditEntry, Job, User


class InsufficientCredits(AtelierError):
    code = "insufficient_credits"


def balance(user: User | int) -> float:
    """The sum of the user's ledger."""
    return float(CreditEntry.select(fn.COALESCE(fn.SUM(CreditEntry.amount), 0)).where(CreditEntry.user == user)
                 .scalar())


def _add(user: User | int, kind: str, amount: float, key: str, job_id: str = "", note: str = "") -> bool:
    """Write one entry and move the running balance by `amount`; False if `key` was used before."""
    try:
        with database.atomic():
            CreditEntry.create(user=user, kind=kind, amount=amount, key=key, job_id=job_id, note=note,
                               created_at=time.time())
            User.update(balance=User.balance + amount).where(User.id == user).execute()
        return True
    except IntegrityError:
        return False


def grant(user: User | int, amount: float, key: str, note: str = "") -> bool:
    """Add `amount` credits once for `key` (a purchase, a monthly grant, an admin's gift). False if
    that key was granted before. A negative amount takes credits away (an admin's correction)."""
    return _add(user, "grant", float(amount), key, note=note)


def reserve(user: User, job_id: str, amount: float) -> None:
    """Hold `amount` credits for a job; raises InsufficientCredits (and takes nothing) when the balance
    is short. Call inside the transaction that writes the job row."""
    if amount <= 0:
        return
    taken = User.update(balance=User.balance - amount).where((User.id == user.id) & (User.balance >= amount)).execute()
    if not taken:
        have = User.get_by_id(user.id).balance
        raise InsufficientCredits(f"This costs {amount:g} credits and you have {have:g}. Buy credits in the Account "
                                  "tab, or make a smaller or shorter request.", field="credits")
    CreditEntry.create(user=user, kind="reserve", amount=-amount, key=f"reserve:{job_id}", job_id=job_id,
                       created_at=time.time())


def settle(job: Job, succeeded: bool) -> bool:
    """Settle a finished job's reservation exactly once: capture it on success, release it (give the
    credits back) otherwise. False if it was settled before or nothing was reserved."""
    if job.credits <= 0:
        return False
    if succeeded:
        return _add(job.owner_id, "capture", 0.0, f"settle:{job.id}", job_id=job.id, note=f"{job.credits:g} spent")
    return _add(job.owner_id, "release", float(job.credits), f"settle:{job.id}", job_id=job.id)


def refund(job: Job, note: str = "") -> bool:
    """Give back what a succeeded job cost (an admin's decision); once per job."""
    captured = CreditEntry.get_or_none((CreditEntry.key == f"settle:{job.id}") & (CreditEntry.kind == "capture"))
    if captured is None:
        raise AtelierError(f"Job {job.id} has no captured credits to refund.", code="not_refundable", field="job_id")
    return _add(job.owner_id, "refund", float(job.credits), f"refund:{job.id}", job_id=job.id, note=note)


def month_key(user: User, now: float | None = None) -> str:
    month = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC).strftime("%Y-%m")
    return f"monthly:{user.id}:{month}"


def monthly_grant(user: User, amount: float, now: float | None = None) -> bool:
    """Grant a tier's monthly `amount` once per calendar month (UTC); guests get none."""
    if user.is_guest or amount <= 0:
        return False
    key = month_key(user, now)
    if CreditEntry.select().where(CreditEntry.key == key).exists():
        return False
    return grant(user, amount, key, note=f"{user.tier} monthly credits")


def history(user: User, limit: int = 100) -> list[CreditEntry]:
    """The user's ledger, newest first."""
    return list(CreditEntry.select().where(CreditEntry.user == user)
                .order_by(CreditEntry.created_at.desc(), CreditEntry.id.desc()).limit(limit))


def move_all(source: User, target: User, key: str) -> float:
    """Move `source`'s whole balance to `target` (a guest who signs in to an existing account); returns
    the amount. Two grants with keys derived from `key`, in one transaction."""
    with database.atomic():
        amount = User.get_by_id(source.id).balance
        if amount > 0 and grant(source, -amount, f"{key}:out", note=f"moved to user {target.id}"):
            grant(target, amount, f"{key}:in", note=f"moved from user {source.id}")
        return amount
