"""The simulator's sender: the rate it is asked for, without a wake-up per event."""

from __future__ import annotations

import threading
import time

import pytest

from conf.settings import load_settings
from index.catalogue import Catalogue, Track
from tools import simulate

pytestmark = pytest.mark.unit


class Collecting:
    """Built and used like the simulator's producers; keeps what it is given."""

    def __init__(self, bootstrap_servers: str, **_options):
        self.events: list[dict] = []
        Collecting.last = self

    def send(self, event: dict) -> None:
        self.events.append(event)

    def send_raw(self, key: str | None, value: bytes) -> None:
        self.events.append({"raw": value})

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def test_the_sender_keeps_its_rate_and_wakes_once_a_tick_not_once_an_event(monkeypatch):
    catalogue = Catalogue({i: Track(i, f"t{i}", f"a{i % 7}", ("Rock", "Folk")[i % 2]) for i in range(1, 200)})
    # Tracks picked at random, not from recommendations: nothing here asks the serving store.
    sim = simulate.Simulator(load_settings(), catalogue, listeners=50, seed=1, from_recommendations=0.0)
    sleeps: list[float] = []
    real_sleep, sender = time.sleep, threading.get_ident()

    def sleep(seconds: float) -> None:
        if threading.get_ident() == sender:  # not the Mongo client's own threads
            sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(simulate.time, "sleep", sleep)
    try:
        report = sim.run(rate=2000.0, duration=0.5, producer_class=Collecting)
    finally:
        sim.close()
    sent = len(Collecting.last.events)
    assert sent == report.total
    assert 800 <= sent <= 1001, "2,000 events/s for 0.5 s (a busy machine may end it a tick or two early)"
    # One wake-up per event would be ~1,000 sleeps; a tick every 5 ms is at most ~100.
    assert len(sleeps) <= 0.5 / simulate.TICK_S + 2
    assert min(sleeps) >= simulate.TICK_S
    ts = sorted(e["ts"] for e in Collecting.last.events if "ts" in e)
    assert ts[0] < ts[-1], "each event is stamped when it is made"
