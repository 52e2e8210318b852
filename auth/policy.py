"""What a user may do, by role and tier: generate at all, how big, how often, and how soon.

Roles: `admin` (everything, every account), `user`, `viewer` (browses, never generates).
Generations per hour are counted from the job rows, so every web process sees the same count;
API calls per minute are counted in this process (a sliding window per user).
"""
from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable

from configs import Tier, Tiers
from pipelines.errors import AtelierError
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
        """Raise if `user` may not start a job now: a viewer, or over the tier's generations per hour."""
        if user.role == "viewer":
            raise Forbidden("Your account can browse but not generate; ask an admin for the user role.",
                            field="role")
        limit = self.tier(user).generations_per_hour
        if not limit:
            return
        since = self.clock() - HOUR
        recent = (Job.select(Job.created_at).where((Job.owner == user) & (Job.created_at > since))
                  .order_by(Job.created_at.desc()).limit(limit))
        times = [j.created_at for j in recent]
        if len(times) >= limit:
            wait = math.ceil(times[-1] + HOUR - self.clock())
            raise RateLimited(f"Your {user.tier} tier allows {limit} generations per hour; try again in {wait} s.",
                              retry_after=wait)

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
        hold up another user's one)."""
        waiting = Job.select().where((Job.owner == user) & Job.status.not_in(FINISHED)).count()
        return self.tier(user).priority * PRIORITY_STEP - waiting
