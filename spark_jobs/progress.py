"""A long job's progress: a bar on a terminal, one plain line per step in a log.

    with Progress("extract", total, unit="tracks", log=log) as progress:
        for chunk in chunks:
            ...
            progress.advance(len(chunk), errors=n_errors)

On a terminal tqdm draws one bar that rewrites itself and is cleared at the
end, so a run leaves only its summary line; in a log (stderr to a file or pipe,
as under CI or a cluster's driver) each step is one INFO line with the count,
the share done, the rate and the step's figures. :func:`spark_tasks` does the
same for Spark actions that run as one (tasks done, from the status tracker).

``./spark-submit.sh`` filters the driver's stderr through a pipe (Ivy's report)
and sets ``EARSHOT_TTY=1`` when it was itself run on a terminal: the bar is then
drawn on ``/dev/tty``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from tqdm import tqdm


def terminal() -> IO[str] | None:
    """Where a bar can be drawn: stderr when it is a terminal, else the launcher's terminal (``EARSHOT_TTY``)."""
    if sys.stderr.isatty():
        return sys.stderr
    if os.environ.get("EARSHOT_TTY") == "1":
        try:
            return open("/dev/tty", "w")  # noqa: SIM115 - kept open for the process's bars
        except OSError:
            return None
    return None


class Progress:
    """Counts ``total`` items of work done in steps; see the module docstring."""

    def __init__(self, what: str, total: int, *, unit: str, log: logging.Logger, stream: IO[str] | None = None):
        self.what, self.total, self.unit, self.log = what, total, unit, log
        self.done = 0
        self.started = time.perf_counter()
        screen = terminal() if stream is None else stream if stream.isatty() else None
        self.bar = (
            tqdm(total=total, desc=what, unit=f" {unit}", file=screen, leave=False, mininterval=0)
            if screen is not None and total
            else None
        )

    def advance(self, n: int, **figures: object) -> None:
        self.done += n
        notes = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in figures.items())
        if self.bar is not None:
            self.bar.set_postfix_str(notes, refresh=False)
            self.bar.update(n)
            return
        rate = self.done / max(time.perf_counter() - self.started, 1e-9)
        share = 100 * self.done / self.total if self.total else 100.0
        self.log.info(
            "%s: %d/%d %s (%.0f%%), %.2f %s/s%s",
            self.what, self.done, self.total, self.unit, share, rate, self.unit, f", {notes}" if notes else "",
        )  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def spark_tasks(
    spark, what: str, *, log: logging.Logger, poll_s: float = 0.5, log_every_s: float = 15.0
) -> Iterator[None]:
    """Progress of the Spark actions run inside the block: tasks finished of the stages started since.

    Read from Spark's status tracker on a thread (no listener to install), so a single long action
    (render a library, build the shards) shows progress too: a bar on a terminal, and in a log one
    line every ``log_every_s`` seconds while it runs (a short job says nothing but its summary).
    """
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(None) or [])
    screen = terminal()
    stop = threading.Event()
    bars: list[tqdm] = []

    def counts() -> tuple[int, int]:
        done = total = 0
        for job in set(tracker.getJobIdsForGroup(None) or []) - before:
            info = tracker.getJobInfo(job)
            for stage in info.stageIds if info else ():
                s = tracker.getStageInfo(stage)
                if s is not None:
                    done, total = done + s.numCompletedTasks, total + s.numTasks
        return done, total

    def watch() -> None:
        said = time.monotonic()
        while not stop.wait(poll_s):
            try:
                done, total = counts()
            except Exception:  # noqa: BLE001, S112 - progress is a courtesy: a tracker error never fails the job
                continue
            if not total:
                continue
            if screen is not None:
                if not bars:
                    bars.append(tqdm(total=total, desc=what, unit=" tasks", file=screen, leave=False))
                bars[0].total, bars[0].n = total, done
                bars[0].refresh()
            elif time.monotonic() - said >= log_every_s:
                said = time.monotonic()
                log.info("%s: %d/%d tasks (%.0f%%)", what, done, total, 100 * done / total)

    thread = threading.Thread(target=watch, name=f"progress-{what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2 * poll_s)
        for bar in bars:
            bar.close()
