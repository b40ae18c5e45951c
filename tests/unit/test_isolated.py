"""The per-track time limit and crash isolation of the analysis (udfs.isolated), on real audio and processes."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from udfs.analyse import analyse
from udfs.isolated import IsolatedAnalyser, crash_reason, time_limit_reason

pytestmark = pytest.mark.unit
SR = 22050


def track(seconds: float = 30.0, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), SR, format="WAV")
    return buf.getvalue()


def test_the_child_returns_what_the_analysis_returns_in_process():
    data = track(8.0)
    expected = analyse(data, sample_rate=SR, clip_seconds=30.0)
    with IsolatedAnalyser(sample_rate=SR, clip_seconds=30.0, time_limit_s=300) as run:
        got = run(data)
        bad = run(b"not audio at all")
    assert got.error is None and got.values == expected.values and got.tempo == expected.tempo
    assert bad.error is not None and bad.error.startswith("cannot decode audio")
    assert run.replaced == 0


def test_closing_ends_the_child_at_once_by_itself():
    """Regression: the child held its copy of the parent's end of the pipe, never saw it close, and every
    close() waited out its 5 s join before killing it: 5 s of a core per extract partition."""
    with IsolatedAnalyser(sample_rate=SR, clip_seconds=30.0, time_limit_s=300) as run:
        assert run(track(2.0)).error is None
        child = run._child
        started = time.monotonic()
    assert time.monotonic() - started < 2.0
    assert child.exitcode == 0, "the child ended by itself when the pipe closed, not killed"


def test_a_track_past_the_limit_is_an_error_row_and_the_next_track_gets_a_fresh_child():
    """A 30 s clip cannot be analysed in 20 ms: the child is killed, the reason names the setting."""
    data = track(30.0)
    with IsolatedAnalyser(sample_rate=SR, clip_seconds=30.0, time_limit_s=0.02) as run:
        first = run(data)
        assert first.values is None and first.error == time_limit_reason(0.02)
        assert "extract.track_time_limit_s" in first.error and run.replaced == 1
        run.time_limit_s = 300
        second = run(data)
    assert second.error is None and len(second.values) == 518


def test_a_child_that_dies_mid_track_is_an_error_naming_the_signal_and_work_goes_on():
    """What a segfault in a decoder does to the process: here a real SIGSEGV sent to the real child."""
    data = track(30.0, seed=1)
    with IsolatedAnalyser(sample_rate=SR, clip_seconds=30.0, time_limit_s=300) as run:
        run(track(2.0))  # the child is up and warm
        pid = run._child.pid
        killer = threading.Timer(0.05, os.kill, (pid, signal.SIGSEGV))
        killer.start()
        crashed = run(data)
        killer.join()
        after = run(data)
    assert crashed.values is None and crashed.error == "the decoder crashed on this file (SIGSEGV)"
    assert after.error is None and run.replaced == 1


def test_limit_zero_analyses_in_process_and_reasons_read_well():
    with IsolatedAnalyser(sample_rate=SR, clip_seconds=30.0, time_limit_s=0) as run:
        assert run(track(3.0)).error is None
        assert run._child is None
    assert crash_reason(-9) == "the decoder crashed on this file (SIGKILL)"
    assert crash_reason(3) == "the decoder's process ended on this file (exit code 3)"
