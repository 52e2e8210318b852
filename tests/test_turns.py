"""DeviceTurns with plain threads (issue 14, item 8): hand-over at a step, first come first served, a quantum
that shares the device without starving anyone, a cancel noticed while waiting, and jobs on the same model
never interleaved. Each job's steps are released one by one by the test (a semaphore), and a fake clock
times the turns, so every order asserted here is decided, not raced."""
from __future__ import annotations

import threading

from pipelines.errors import JobCancelled
from pipelines.turns import DeviceTurns
from tests.conftest import wait_until


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Job:
    """A thread that runs one node of `steps` steps on `turns`; each step waits for `release()` unless `free`.
    `log` gets (label, "start"), (label, step number) and (label, "end") in the order they happen."""

    def __init__(self, turns: DeviceTurns, label: str, log: list, steps: int = 3, uses=(), free: bool = False):
        self.turns, self.label, self.log, self.steps, self.uses = turns, label, log, steps, uses
        self.gate = threading.Semaphore(steps if free else 0)
        self.cancel = threading.Event()
        self.turn = None
        self.error = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name=label, daemon=True)
        self.thread.start()

    def check(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled(f"{self.label} cancelled")

    def release(self, steps: int = 1) -> None:
        self.gate.release(steps)

    def _run(self) -> None:
        try:
            with self.turns.turn(self.uses, self.label, self.check) as turn:
                self.turn = turn
                self.log.append((self.label, "start"))
                for i in range(self.steps):
                    self.gate.acquire()
                    self.log.append((self.label, i + 1))
                    turn.step(self.check)
        except JobCancelled as e:
            self.error = e
        finally:
            self.log.append((self.label, "end"))
            self.done.set()

    def finish(self) -> None:
        self.release(self.steps)
        assert self.done.wait(60), f"{self.label} did not end"


def holding(turns: DeviceTurns, label: str) -> bool:
    holder = turns.holder()
    return holder is not None and holder.label == label


def in_line(turns: DeviceTurns, label: str) -> bool:
    return any(t.label == label for t in turns.waiting())


def test_a_newcomer_takes_the_device_at_the_next_step_of_a_job_that_ran_alone():
    turns, log = DeviceTurns(quantum=60, clock=Clock()), []
    long = Job(turns, "long", log, steps=5)
    wait_until(lambda: holding(turns, "long"), "the long job to hold the device")
    long.release(2)
    wait_until(lambda: ("long", 2) in log, "two steps of the long job")
    short = Job(turns, "short", log, steps=3, free=True)
    wait_until(lambda: in_line(turns, "short"), "the short job to wait")
    long.release()                                       # one more step of the long job: it hands over there
    assert short.done.wait(60)
    assert log == [("long", "start"), ("long", 1), ("long", 2), ("long", 3),
                   ("short", "start"), ("short", 1), ("short", 2), ("short", 3), ("short", "end")]
    assert (long.turn.handovers, short.turn.handovers, short.turn.steps) == (1, 0, 3)
    assert (short.turn.steps_before, short.turn.steps_between) == (1, 0)     # one step of the long job waited
    long.finish()
    assert log[-3:] == [("long", 4), ("long", 5), ("long", "end")] and long.error is None
    assert turns.holder() is None and turns.waiting() == []


def test_waiting_jobs_get_the_device_first_come_first_served():
    turns, log = DeviceTurns(quantum=60, clock=Clock()), []
    first = Job(turns, "first", log, steps=1)
    wait_until(lambda: holding(turns, "first"), "the first job to hold the device")
    others = []
    for label in ("a", "b", "c"):
        others.append(Job(turns, label, log, steps=1, free=True))
        wait_until(lambda: in_line(turns, label), f"{label} to wait")
    first.finish()
    for job in others:
        assert job.done.wait(60)
    assert [label for label, what in log if what == "start"] == ["first", "a", "b", "c"]


def test_turns_share_the_device_by_quantum_and_nobody_starves():
    """A newcomer preempts a job that ran alone; after that, each holds the device for a quantum in turn, and a
    job resumed after being preempted is not preempted again by the next newcomer before its quantum."""
    clock = Clock()
    turns, log = DeviceTurns(quantum=1.0, clock=clock), []
    long = Job(turns, "long", log, steps=20)
    wait_until(lambda: holding(turns, "long"), "the long job to hold the device")
    short = Job(turns, "short", log, steps=20)
    wait_until(lambda: in_line(turns, "short"), "the short job to wait")
    long.release()
    wait_until(lambda: holding(turns, "short"), "the short job to take over")
    short.release(2)                                    # within its quantum: it keeps the device
    wait_until(lambda: short.turn.steps == 2, "two steps of the short job")
    assert holding(turns, "short")
    clock.now += 1.0
    short.release()                                     # its quantum used, the long job waiting: hand over
    wait_until(lambda: holding(turns, "long"), "the long job to resume")
    newcomer = Job(turns, "newcomer", log, steps=1, free=True)
    wait_until(lambda: in_line(turns, "newcomer"), "the newcomer to wait")
    long.release(3)                                     # resumed, so not preempted before its quantum
    wait_until(lambda: long.turn.steps == 4, "three more steps of the long job")
    assert holding(turns, "long") and long.turn.handovers == 1
    clock.now += 1.0
    long.release()
    wait_until(lambda: holding(turns, "short"), "the short job's next turn (first in line)")
    clock.now += 1.0
    short.release()
    assert newcomer.done.wait(60)                       # then the newcomer, before the long job again
    wait_until(lambda: holding(turns, "long"), "the long job's next turn")
    assert [t.label for t in turns.waiting()] == ["short"]
    long.finish()
    short.finish()
    assert [label for label, what in log if what == "end"] == ["newcomer", "long", "short"]


def test_a_cancel_is_noticed_while_waiting_for_a_first_turn_or_to_resume():
    turns, log = DeviceTurns(quantum=60, poll=0.01, clock=Clock()), []
    holder = Job(turns, "holder", log, steps=3)
    wait_until(lambda: holding(turns, "holder"), "the holder to hold the device")
    waiter = Job(turns, "waiter", log, steps=1)
    wait_until(lambda: in_line(turns, "waiter"), "the waiter to wait")
    waiter.cancel.set()
    assert waiter.done.wait(60)
    assert isinstance(waiter.error, JobCancelled) and ("waiter", "start") not in log
    assert not in_line(turns, "waiter") and holding(turns, "holder")

    short = Job(turns, "short", log, steps=2)
    wait_until(lambda: in_line(turns, "short"), "the short job to wait")
    holder.release()                                    # hands over to the newcomer; now it waits to resume
    wait_until(lambda: holding(turns, "short"), "the short job to take over")
    holder.cancel.set()
    assert holder.done.wait(60)
    assert isinstance(holder.error, JobCancelled) and turns.waiting() == []
    short.finish()
    assert short.error is None and turns.holder() is None


def test_jobs_on_the_same_model_never_interleave():
    """`uses` in common: the second waits for the first's node to end, while a job on another model may still
    take the device at a step."""
    turns, log = DeviceTurns(quantum=60, clock=Clock()), []
    first = Job(turns, "first", log, steps=4, uses=("sd15",))
    wait_until(lambda: holding(turns, "first"), "the first job to hold the device")
    same = Job(turns, "same", log, steps=1, uses=("sd15",), free=True)
    wait_until(lambda: in_line(turns, "same"), "the job on the same model to wait")
    other = Job(turns, "other", log, steps=1, uses=("upscaler",), free=True)
    wait_until(lambda: in_line(turns, "other"), "the job on another model to wait")
    first.release()
    assert other.done.wait(60)                          # it skipped the one that may not run yet
    wait_until(lambda: holding(turns, "first"), "the first job to resume")
    first.release(2)
    wait_until(lambda: first.turn.steps == 3, "two more steps of the first job")
    assert holding(turns, "first") and not same.done.is_set()
    first.release()
    assert first.done.wait(60) and same.done.wait(60)
    starts = [label for label, what in log if what == "start"]
    assert starts == ["first", "other", "same"]
    assert log.index(("first", "end")) < log.index(("same", "start"))


def test_without_a_quantum_a_node_runs_whole():
    turns, log = DeviceTurns(quantum=None, clock=Clock()), []
    long = Job(turns, "long", log, steps=3)
    wait_until(lambda: holding(turns, "long"), "the long job to hold the device")
    short = Job(turns, "short", log, steps=1, free=True)
    wait_until(lambda: in_line(turns, "short"), "the short job to wait")
    long.finish()
    assert short.done.wait(60)
    assert log.index(("long", "end")) < log.index(("short", "start")) and long.turn.handovers == 0
