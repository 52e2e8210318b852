"""What a user may do, by role and tier: generate at all, how big, how often, and how soon.

Roles: `admin` (everything, every account), `user`, `viewer` (browses, never generates).
Generations per hour are counted from the job rows (each job as its steps that make images or video),
inside the transaction that inserts the next job and with the user's row locked, so every web process
sees the same count and concurrent submissions cannot all slip under the limit; API calls per minute
are counted in this process (a sliding window per user).
"""
from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable

from peewee import fn

from configs import Tier, Tiers
from pipelines.errors import AtelierError
from storage.db import database
from storage.models import FINISHED, Job, User

HOUR, MINUTE = 3600.0, 60.0
PRIORITY_STEP = 1000          # a tier's priority is worth more than any user's queue length


class RateLimited(AtelierError):
    """Too many requests; `retry_after` says in how many seconds the next one is allowed."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, field="")
        self.retry_after = retry_after


class Forbidden(AtelierError):
    code = "forbidden"


class Policy:
    """Role and tier rules.

    Args:
        tiers: the tiers file.
        clock: returns the time in Unix seconds (tests move it).
    """

    def __init__(self, tiers: Tiers, clock: Callable[[], float] = time.time):
        self.tiers = tiers
        self.clock = clock
        self._calls: dict[int, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def tier(self, user: User) -> Tier:
        return self.tiers.tier(user.tier)

    def check_generate(self, user: User) -> None:
        """Raise Forbidden if `user` may not generate at all (a viewer). The hourly allowance is checked
        by `check_hourly`, inside the transaction that stores the job."""
        if user.role == "viewer":
            raise Forbidden("Your account can browse but not generate; ask an admin for the user role.",
                            field="role")

    def check_hourly(self, user: User, generations: int = 1) -> None:
        """Raise RateLimited if `generations` more would take `user` past the tier's generations per hour
        (counted over the jobs the user submitted in the last hour, each as its `Job.generations`).

        Call it inside the transaction that inserts the job row, so that the count and the insert are one
        step: on PostgreSQL (any database with row locks) it first locks the user's row (SELECT ... FOR
        UPDATE), so one user's concurrent submissions count one after another, each seeing the jobs
        stored before it. SQLite has no row locks and needs none: its transactions begin IMMEDIATE
        (storage/db.py), so a single writer at a time runs the whole count and insert. Counted before the
        insert, outside it, 30 concurrent submissions of a 10-an-hour user let 12 through (issue 11).

        Args:
            user: who submits.
            generations: what the new job uses (its steps that make images or video, at least 1).
        """
        limit = self.tier(user).generations_per_hour
        if not limit:
            return
        if generations > limit:
            raise AtelierError(f"This workflow makes {generations} generations and your {user.tier} tier allows "
                               f"{limit} per hour; split it into smaller workflows, or change tier in the Account "
                               "tab.", code="over_hourly_limit", field="nodes")
        if database.for_update:
            User.select(User.id).where(User.id == user.id).for_update().get_or_none()
        now = self.clock()
        recent = (Job.select(Job.created_at, Job.generations)
                  .where((Job.owner == user) & (Job.created_at > now - HOUR))
                  .order_by(Job.created_at.desc()).limit(limit))       # each job uses at least one
        used = 0
        for job in recent:
            used += job.generations
            if used + generations > limit:
                # Newest first: once this job is an hour old, it and every older one are out of the count,
                # and the newer ones leave room for this request.
                wait = math.ceil(job.created_at + HOUR - now)
                counted = f" This workflow counts as {generations}." if generations > 1 else ""
                raise RateLimited(f"Your {user.tier} tier allows {limit} generations per hour; try again in "
                                  f"{wait} s.{counted}", retry_after=wait)

    def check_api_call(self, user: User) -> None:
        """Count one API call; raise if `user` made the tier's allowance already in the last minute."""
        limit = self.tier(user).api_calls_per_minute
        if not limit:
            return
        now = self.clock()
        with self._lock:
            calls = self._calls[user.id]
            while calls and calls[0] <= now - MINUTE:
                calls.popleft()
            if len(calls) >= limit:
                wait = max(1, math.ceil(calls[0] + MINUTE - now))
                raise RateLimited(f"Your {user.tier} tier allows {limit} API calls per minute; try again in "
                                  f"{wait} s.", retry_after=wait)
            calls.append(now)

    def priority(self, user: User) -> int:
        """The queue priority of `user`'s next job: the tier's, less one for each of the user's jobs
        already waiting, so that within a tier users take turns (ten queued jobs of one user do not
        hold up another user's one); and never above the user's own queued jobs, so that their jobs
        start in the order they were sent. (Without that, a job sent while the user had 19 waiting sat
        behind every later one sent when fewer were, for as long as the user kept sending.)"""
        mine = Job.select().where((Job.owner == user) & Job.status.not_in(FINISHED))
        turn = self.tier(user).priority * PRIORITY_STEP - mine.count()
        lowest_queued = mine.where(Job.status == "queued").select(fn.MIN(Job.priority)).scalar()
        return turn if lowest_queued is None else min(turn, lowest_queued)
