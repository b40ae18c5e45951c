"""One track at a time in a child process, under a time limit.

A decoder can hang or crash on a pathological file (a C library looping over a
malformed stream, a segfault in an encoder's bitstream parser). In the UDF's own
process either one takes the whole Spark task down, and with it the job. Here
the analysis runs in a forked child that the UDF's process feeds over a pipe: a
track that runs past ``time_limit_s`` gets its child killed and an error row
that says so, a child that dies gets one naming the signal, and the next track
goes to a fresh child. The child is forked after the numba warm-up, so it
inherits the compiled kernels and starts in milliseconds.

``time_limit_s = 0`` turns the isolation off (analysis in the calling process).
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection

from udfs.analyse import Analysis, analyse


def time_limit_reason(limit_s: float) -> str:
    return (
        f"analysis took longer than {limit_s:g} s (the per-track time limit, extract.track_time_limit_s); "
        "the decoder was stopped"
    )


def crash_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the decoder crashed on this file ({name})"
    return f"the decoder's process ended on this file (exit code {exitcode})"


def _serve(conn: Connection, parents_end: Connection, sample_rate: int, clip_seconds: float, weights) -> None:
    """The child: analyse each track it is sent until the pipe closes."""
    # The fork copied the parent's end of the pipe too: held open here, the child would never see the
    # parent close it, and every close() would wait out its join's timeout, then kill the child.
    parents_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the child stops
    faulthandler.disable()  # a crash is reported once, as the track's error row, not as a stack dump
    # A C decoder's complaints about a broken file ("part2_3_length too large", to fd 2) say nothing the
    # track's error row does not: the child's stderr goes nowhere, the reason comes back over the pipe.
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 2)
    os.close(quiet)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        conn.send(analyse(data, sample_rate=sample_rate, clip_seconds=clip_seconds, weights=weights))


class IsolatedAnalyser:
    """``analyse`` behind a process boundary and a per-track time limit; never raises for a bad file."""

    def __init__(self, *, sample_rate: int, clip_seconds: float, time_limit_s: float, weights=None) -> None:
        self.weights = weights  # musicnn's, for the embedding; the child inherits them by fork
        self.sample_rate = sample_rate
        self.clip_seconds = clip_seconds
        self.time_limit_s = time_limit_s
        self._context = multiprocessing.get_context("fork")
        self._child = None
        self._conn: Connection | None = None
        self.replaced = 0  # children killed or lost, for tests and logs

    def __enter__(self) -> IsolatedAnalyser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, data: bytes) -> Analysis:
        if self.time_limit_s <= 0:
            return analyse(data, sample_rate=self.sample_rate, clip_seconds=self.clip_seconds, weights=self.weights)
        conn = self._ensure_child()
        try:
            conn.send_bytes(data)
            if conn.poll(self.time_limit_s):
                return conn.recv()
            reason = time_limit_reason(self.time_limit_s)
        except (EOFError, OSError, BrokenPipeError):
            reason = None
        exitcode = self._stop_child()
        return Analysis(None, None, reason or crash_reason(exitcode))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the child's recv ends; it exits
            self._conn = None
        if self._child is not None:
            self._child.join(5)
            if self._child.is_alive():
                self._child.kill()
                self._child.join()
            self._child = None

    def _ensure_child(self) -> Connection:
        if self._child is None or not self._child.is_alive():
            if self._child is not None:
                self._stop_child()
            parent, child = self._context.Pipe(duplex=True)
            self._child = self._context.Process(
                target=_serve,
                args=(child, parent, self.sample_rate, self.clip_seconds, self.weights),
                name=f"earshot-analyse-{os.getpid()}",
                daemon=True,
            )
            self._child.start()
            child.close()
            self._conn = parent
        assert self._conn is not None
        return self._conn

    def _stop_child(self) -> int | None:
        """Kill the child (hung or dead); returns its exit code."""
        child, self._child = self._child, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if child is None:
            return None
        if child.is_alive():
            child.kill()
        child.join()
        self.replaced += 1
        return child.exitcode
