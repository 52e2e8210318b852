"""DeviceTurns: the jobs of one process take turns on the device at step boundaries (issue 14, item 8).

A backend runs each node inside `turns.turn(uses, label)` and calls `turn.step()` at every denoising
step, tile and decoded chunk. Only the job holding the turn runs; the others wait in arrival order
(FIFO). The holder hands the device over at a step boundary, and waits for its next turn, when:

- it has held the device for `quantum` seconds in this turn and another job can take it (round-robin
  with a time quantum: a long job and a stream of short ones share the device, neither starves); or
- a job that has not run yet is waiting, the holder is in its first turn of the node (it ran
  uncontested until now), and no job it preempted earlier waits to resume. A newcomer then waits at
  most one step of a long job; the long job, once preempted, resumes with a full quantum before the
  next newcomer, and newcomers queue behind it (so it gets at least half the device while they come).

Jobs that use the same loaded pipeline objects must not interleave: a pipeline carries mutable state
(its scheduler's timesteps, the LoRA adapters set on its denoiser, attention processors). `uses` names
what a node runs on (the model cache's keys); a job that has not started yet is passed over while a
started job (running or suspended mid-node) uses any of the same things, until that node ends. A
suspended job always may resume, so someone can always run.

A waiting job calls `while_waiting()` every `poll` seconds; raising from it (JobCancelled) takes the job
out of the line at once, so a cancel is noticed within a poll while waiting for a turn.

`quantum=None` turns hand-over off: a job keeps the device for whole nodes, as one lock did before.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator

logger = logging.getLogger(__name__)

# The phase a job's progress callback is given while it waits for its turn (to start or to resume a node).
WAITING = "waiting"


class Turn:
    """One job's node on the device: what it uses, and what it did (read by tests and benchmarks).

    Attributes:
        label: names the node in log lines ("txt2img on demo-sd15").
        uses: the loaded objects the node runs on (model cache keys).
        steps: the steps it reported while holding the device.
        handovers: how often it gave the device to another job mid-node.
        waited: seconds it spent waiting for the device (first turn and resumes).
        arrived, began, ended: how many steps all jobs had run on the device (`DeviceTurns.steps`) when it
            got in line, when it first held the device (None before) and when its node ended (None before).
    """

    def __init__(self, turns: DeviceTurns, uses: frozenset, label: str):
        self.label = label
        self.uses = uses
        self.steps = 0
        self.handovers = 0
        self.waited = 0.0
        self.arrived = turns.steps
        self.began: int | None = None
        self.ended: int | None = None
        self.started = False         # has held the device in this node (so its pipelines are mid-use)
        self.resumed = False         # holds a turn it got back after a hand-over (protected from newcomers)
        self.since = 0.0             # when its current turn began
        self._turns = turns

    def step(self, while_waiting: Callable[[], None] = lambda: None) -> bool:
        """A step boundary of the holder: hand the device over if it is due (see the module docstring) and wait
        for the next turn, calling `while_waiting()` every poll. Returns whether the device was handed over."""
        return self._turns._step(self, while_waiting)

    @property
    def steps_before(self) -> int | None:
        """Steps of other jobs between its arrival and its first step (None before it began)."""
        return None if self.began is None else self.began - self.arrived

    @property
    def steps_between(self) -> int | None:
        """Steps of other jobs between its first step and its end, while it was suspended (None before it ended)."""
        return None if self.ended is None or self.began is None else self.ended - self.began - self.steps


class DeviceTurns:
    """Takes turns on one device among the threads of a process.

    Args:
        quantum: seconds a job holds the device before it hands over to a waiting job; None: never mid-node.
        poll: seconds between two `while_waiting()` calls of a waiting job.
        clock: the monotonic clock (seconds) that times turns.
        remember: how many ended turns `recent()` keeps.
    """

    def __init__(self, quantum: float | None = 2.0, poll: float = 0.2, clock: Callable[[], float] = time.monotonic,
                 remember: int = 32):
        self.quantum = quantum
        self.poll = poll
        self.clock = clock
        self._changed = threading.Condition()
        self._holder: Turn | None = None
        self._waiting: list[Turn] = []             # in line, first come first
        self.steps = 0                             # steps run on the device by all jobs, ever
        self._ended: collections.deque[Turn] = collections.deque(maxlen=remember)

    @contextlib.contextmanager
    def turn(self, uses: Iterable[Hashable] = (), label: str = "",
             while_waiting: Callable[[], None] = lambda: None) -> Iterator[Turn]:
        """Hold the device for one node: waits for a turn (calling `while_waiting()` every poll), yields the
        `Turn` whose `step()` the node calls at every step, and gives the device to the next job at the end."""
        with self._changed:
            turn = Turn(self, frozenset(uses), label)
            self._waiting.append(turn)
            self._dispatch()
        self._wait_for(turn, while_waiting)
        try:
            yield turn
        finally:
            with self._changed:
                self._leave(turn)

    def holder(self) -> Turn | None:
        """The turn running on the device now."""
        with self._changed:
            return self._holder

    def waiting(self) -> list[Turn]:
        """The turns waiting for the device, in line."""
        with self._changed:
            return list(self._waiting)

    def recent(self) -> list[Turn]:
        """The last turns that ended (their node done or cancelled), oldest first."""
        with self._changed:
            return list(self._ended)

    # -- inside the condition ----------------------------------------------------------------------

    def _eligible(self, turn: Turn) -> bool:
        """Whether `turn` may take the device: a started node may always resume; a new one only when no
        started node of another job uses anything it uses."""
        if turn.started:
            return True
        busy = [t for t in ([self._holder] if self._holder else []) + self._waiting if t.started and t is not turn]
        return not any(turn.uses & t.uses for t in busy)

    def _next(self) -> Turn | None:
        return next((t for t in self._waiting if self._eligible(t)), None)

    def _give(self, turn: Turn) -> None:
        self._waiting.remove(turn)
        if self._holder is not None:
            logger.debug("device: %s hands over to %s after %d step(s)", self._holder.label, turn.label,
                         self._holder.steps)
        self._holder = turn
        turn.resumed = turn.started
        if not turn.started:
            turn.began = self.steps
        turn.started = True
        turn.since = self.clock()
        self._changed.notify_all()

    def _dispatch(self) -> None:
        """With the device free, give it to the first job in line that may take it."""
        if self._holder is None and (chosen := self._next()) is not None:
            self._give(chosen)

    def _leave(self, turn: Turn) -> None:
        """`turn`'s node ended (or it was cancelled while waiting): out of line, the device to the next."""
        if turn.ended is None:
            turn.ended = self.steps
            self._ended.append(turn)
        if self._holder is turn:
            self._holder = None
        elif turn in self._waiting:
            self._waiting.remove(turn)
        self._dispatch()
        self._changed.notify_all()

    def _due(self, holder: Turn, candidate: Turn) -> bool:
        """Whether the holder should hand the device to `candidate` at this step."""
        if self.clock() - holder.since >= self.quantum:
            return True
        newcomer = not candidate.started
        preempted_wait = any(t.started for t in self._waiting)
        return newcomer and not holder.resumed and not preempted_wait

    def _step(self, turn: Turn, while_waiting: Callable[[], None]) -> bool:
        with self._changed:
            if self._holder is not turn:
                raise RuntimeError(f"{turn.label} stepped without holding the device")
            turn.steps += 1
            self.steps += 1
            if self.quantum is None or (candidate := self._next()) is None or not self._due(turn, candidate):
                return False
            turn.handovers += 1
            self._waiting.append(turn)
            self._give(candidate)
        self._wait_for(turn, while_waiting)
        return True

    # -- outside it --------------------------------------------------------------------------------

    def _wait_for(self, turn: Turn, while_waiting: Callable[[], None]) -> None:
        """Block until `turn` holds the device; if `while_waiting` raises, leave the line and raise."""
        began = self.clock()
        try:
            while True:
                with self._changed:
                    if self._holder is turn or self._changed.wait_for(lambda: self._holder is turn, self.poll):
                        return
                while_waiting()
        except BaseException:
            with self._changed:
                self._leave(turn)
            raise
        finally:
            turn.waited += self.clock() - began
