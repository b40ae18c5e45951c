"""Stopping the stream: the archive query is stopped between its batches, not inside its MERGE."""

from __future__ import annotations

import pytest

from spark_jobs.stream import between_batches

pytestmark = pytest.mark.unit


class Query:
    """A streaming query's status as Spark reports it: a trigger active for ``busy`` polls, then idle."""

    def __init__(self, busy: int):
        self.busy, self.isActive, self.polls = busy, True, 0

    @property
    def status(self) -> dict:
        self.polls += 1
        return {"isTriggerActive": self.polls <= self.busy}


def test_a_stop_waits_for_the_running_batch_and_gives_up_at_its_limit():
    """Regression: stopping the archive mid-batch interrupted a Py4J call, and Spark's message match overflowed
    its stack (a StackOverflowError in the log)."""
    running = Query(busy=3)
    assert between_batches(running, 5.0, poll_s=0.01) and running.polls == 4
    stuck = Query(busy=10**9)
    assert not between_batches(stuck, 0.05, poll_s=0.01)
    idle = Query(busy=0)
    assert between_batches(idle, 5.0, poll_s=0.01) and idle.polls == 1
