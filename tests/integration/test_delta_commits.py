"""Two writers MERGE into one Delta table at once, as the stream's archive and ``import-history`` do into
``events``: the one whose commit comes second is committed again on the table's new version, and both
writers' rows land once (``connectors.delta_io.committing``)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from connectors import delta_io

pytestmark = pytest.mark.spark


def slow_rows(started: Path, seconds: float):
    """A mapInPandas step that, the first time it runs, says it has begun (a file) and then takes ``seconds``:
    the MERGE that reads it has opened its transaction and is still running while the other writer commits."""

    def run(frames):
        import time as clock

        if not started.exists():
            started.touch()
            clock.sleep(seconds)
        yield from frames

    return run


def test_a_merge_whose_commit_conflicts_with_another_writers_is_committed_again(spark, tmp_path, caplog):
    location = str(tmp_path / "events")
    schema = "event_id long, source string"
    delta_io.merge_upsert(spark, spark.createDataFrame([(n, "first") for n in range(10)], schema), location,
                          keys=["event_id"], update=False)  # fmt: skip
    started = tmp_path / "started"
    slow = spark.createDataFrame([(n, "slow") for n in range(100, 110)], schema).coalesce(1)
    slow = slow.mapInPandas(slow_rows(started, 4.0), schema)
    outcome: dict = {}

    def slow_writer() -> None:
        try:
            outcome["inserted"] = delta_io.merge_upsert(spark, slow, location, keys=["event_id"], update=False)
        except Exception as e:  # noqa: BLE001 - handed to the test's thread below
            outcome["error"] = e

    caplog.set_level(logging.WARNING, logger="earshot.delta")
    writer = threading.Thread(target=slow_writer)
    writer.start()
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists(), "the slow MERGE never began"
    fast = spark.createDataFrame([(n, "fast") for n in range(200, 205)], schema)
    assert delta_io.merge_upsert(spark, fast, location, keys=["event_id"], update=False) == 5
    writer.join(timeout=120)

    assert "error" not in outcome, outcome.get("error")
    assert outcome["inserted"] == 10
    assert "another writer committed first (ConcurrentAppendException)" in caplog.text, "no conflict was met"
    rows = delta_io.read_table(spark, location).groupBy("source").count().collect()
    assert {r["source"]: r["count"] for r in rows} == {"first": 10, "slow": 10, "fast": 5}
    assert delta_io.read_table(spark, location).select("event_id").distinct().count() == 25
