"""The audit log: what admins (and billing) did to accounts, and the admin actions that write it."""
from __future__ import annotations

import json
import logging
import time

from peewee import fn

from auth import credits
from auth.policy import Forbidden
from configs import Tiers
from pipelines.errors import AtelierError, NotFound
from storage.db import database
from storage.models import ROLES, AuditEvent, Job, User

logger = logging.getLogger(__name__)


def record(actor: User | None, action: str, target: User | None = None, **details) -> AuditEvent:
    logger.info("audit: %s by %s on %s %s", action, actor.id if actor else "-", target.id if target else "-", details)
    return AuditEvent.create(actor=actor, action=action, target=target, details=json.dumps(details, sort_keys=True),
                             created_at=time.time())


def events(limit: int = 200) -> list[dict]:
    rows = AuditEvent.select().order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    return [{"at": e.created_at, "actor": e.actor.email if e.actor_id else "", "action": e.action,
             "target": e.target.email if e.target_id else "", "details": json.loads(e.details)} for e in rows]


class Admin:
    """What an admin may do to other accounts; every action is audited. Non-admins get Forbidden."""

    def __init__(self, tiers: Tiers):
        self.tiers = tiers

    @staticmethod
    def _require(actor: User) -> None:
        if actor.role != "admin":
            raise Forbidden("Only admins may do that.", field="role")

    def _target(self, user_id) -> User:
        target = User.get_or_none(User.id == user_id) if isinstance(user_id, int) else None
        if target is None:
            raise NotFound(f"No user {user_id!r}.", field="user_id")
        return target

    def users(self, actor: User, search: str = "", limit: int = 500) -> list[dict]:
        """The accounts whose email contains `search`, newest first (`limit` of them), with their usage:
        jobs that succeeded, credits spent, credits left."""
        self._require(actor)
        usage = {row.owner_id: (row.jobs, row.spent or 0.0) for row in
                 Job.select(Job.owner, fn.COUNT(Job.id).alias("jobs"), fn.SUM(Job.credits).alias("spent"))
                 .where(Job.status == "succeeded").group_by(Job.owner)}
        users = (User.select().where((User.is_guest == False) & User.email.contains(search or ""))  # noqa: E712
                 .order_by(User.id.desc()).limit(limit))
        return [{"user_id": u.id, "email": u.email, "role": u.role, "tier": u.tier, "balance": u.balance,
                 "jobs": usage.get(u.id, (0, 0.0))[0], "credits_spent": usage.get(u.id, (0, 0.0))[1]}
                for u in users]

    def grant(self, actor: User, user_id, amount, note: str = "") -> None:
        self._require(actor)
        if not isinstance(amount, (int, float)) or not amount or abs(amount) > 1_000_000:
            raise AtelierError(f"Grant a non-zero number of credits up to 1,000,000, got {amount!r}.",
                               code="bad_amount", field="amount")
        target = self._target(user_id)
        with database.atomic():
            event = record(actor, "grant_credits", target, amount=amount, note=note)
            credits.grant(target, amount, f"admin:{event.id}", note=note or f"granted by {actor.email}")

    def refund(self, actor: User, job_id, note: str = "") -> float:
        """Give back what a succeeded job cost (a bad result, a complaint); once per job. Returns the amount."""
        self._require(actor)
        job = Job.get_or_none(Job.id == job_id) if isinstance(job_id, str) and job_id else None
        if job is None:
            raise NotFound(f"No job {job_id!r}.", field="job_id")
        with database.atomic():
            if not credits.refund(job, note or f"refunded by {actor.email}"):
                raise AtelierError(f"Job {job.id} was refunded already.", code="refunded", field="job_id")
            record(actor, "refund_job", job.owner, job_id=job.id, amount=job.credits, note=note)
        return job.credits

    def set_tier(self, actor: User, user_id, tier: str) -> None:
        self._require(actor)
        if tier not in self.tiers.names:
            raise AtelierError(f"Unknown tier {tier!r}; use one of {self.tiers.names}.", code="bad_tier", field="tier")
        target = self._target(user_id)
        with database.atomic():
            User.update(tier=tier).where(User.id == target.id).execute()
            record(actor, "set_tier", target, before=target.tier, after=tier)

    def set_role(self, actor: User, user_id, role: str) -> None:
        self._require(actor)
        if role not in ROLES:
            raise AtelierError(f"Unknown role {role!r}; use one of {ROLES}.", code="bad_role", field="role")
        target = self._target(user_id)
        with database.atomic():
            User.update(role=role).where(User.id == target.id).execute()
            record(actor, "set_role", target, before=target.role, after=role)
