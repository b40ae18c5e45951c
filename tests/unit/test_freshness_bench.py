"""The freshness benchmark's arithmetic: when a batch was done, and the rate the stream got through."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.freshness import applied_rate, batch_end, finished_at

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


def batch(end_s: float, rows: int, dlq_ms: float = 0.0) -> dict:
    return {"at": datetime.fromtimestamp(T0 + end_s, UTC).replace(tzinfo=None), "input_rows": rows, "dlq_ms": dlq_ms}


def test_a_batch_ends_when_its_dead_letters_are_sent_and_one_that_read_nothing_has_no_end():
    assert batch_end(batch(2.0, 10, dlq_ms=500.0)) == pytest.approx(T0 + 2.5)
    assert batch_end(batch(2.0, 0)) is None
    assert finished_at([batch(1.0, 5), batch(3.0, 5), batch(9.0, 0)]) == pytest.approx(T0 + 3.0)


def test_a_stream_that_keeps_up_reads_the_offered_rate_whatever_its_last_batch_costs():
    # 2,000/s offered; 2 s batches, each holding the 4,000 messages that came while the one before ran.
    batches = [batch(2.0 * k, 4000) for k in range(1, 31)] + [batch(63.5, 4000)]  # a slow last batch (the drain)
    assert applied_rate(batches, T0, T0 + 60.0) == pytest.approx(2000.0)
    sent_over_window_and_drain = 120_000 / 63.5
    assert sent_over_window_and_drain < 1950  # what the drain-counting figure says of the same stream


def test_a_stream_that_falls_behind_reads_its_capacity_and_too_few_batches_read_nothing():
    # capped at 3,000 messages a batch of 2 s while 2,000/s arrive: the backlog grows, 1,500/s get through.
    batches = [batch(2.0 * k, 3000) for k in range(1, 31)]
    assert applied_rate(batches, T0 + 0.5, T0 + 60.0) == pytest.approx(1500.0)
    assert applied_rate(batches[:1], T0, T0 + 60.0) is None
    assert applied_rate(batches, T0 + 61.0, T0 + 90.0) is None


def test_the_cpu_table_counts_each_process_from_where_it_was_and_a_new_one_whole():
    from bench.freshness import CLOCK_TICKS, cpu_cores

    before = {1: ("FerretDB", 100), 2: ("stream: Python workers", 50), 3: ("other", 7)}
    after = {1: ("FerretDB", 300), 2: ("stream: Python workers", 450), 4: ("stream: Python workers", 200)}
    # worker 2 used 400 ticks and the new worker 4 all its 200; process 3 ended, so it counts nothing
    cores = cpu_cores(before, after, seconds=4.0)
    workers, ferretdb = round(600 / CLOCK_TICKS / 4, 2), round(200 / CLOCK_TICKS / 4, 2)
    assert cores == {"stream: Python workers": workers, "FerretDB": ferretdb}
    assert list(cores) == ["stream: Python workers", "FerretDB"]


def test_this_process_is_the_load_generator_and_a_gone_one_is_nothing():
    import os

    from bench.freshness import cpu_ticks, process_kind

    assert process_kind(os.getpid(), stream_session=-1) == "benchmark (load generator)"
    assert process_kind(2**22 + 12345, stream_session=-1) is None
    assert cpu_ticks(stream_session=-1)[os.getpid()][0] == "benchmark (load generator)"
