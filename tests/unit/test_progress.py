"""A long job's progress: a bar on a terminal, plain lines in a log."""

from __future__ import annotations

import io
import logging

import pytest

from spark_jobs.progress import Progress

pytestmark = pytest.mark.unit


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_each_step_is_one_line_with_count_share_and_figures(caplog):
    log = logging.getLogger("earshot.test_progress")
    with caplog.at_level(logging.INFO, logger=log.name), Progress("extract", 10, unit="tracks", log=log) as p:
        p.advance(4, errors=1)
        p.advance(6, errors=2)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("extract: 4/10 tracks (40%)") and lines[0].endswith(", 1 errors")
    assert lines[1].startswith("extract: 10/10 tracks (100%)") and lines[1].endswith(", 2 errors")


def test_on_a_terminal_a_bar_is_drawn_and_no_line_is_logged(caplog):
    log = logging.getLogger("earshot.test_progress")
    screen = Terminal()
    with (
        caplog.at_level(logging.INFO, logger=log.name),
        Progress("extract", 3, unit="tracks", log=log, stream=screen) as p,
    ):
        p.advance(1, errors=0)
        p.advance(2, errors=0)
    assert not caplog.records
    assert "extract" in screen.getvalue() and "3/3" in screen.getvalue()


def test_nothing_to_do_logs_no_division_by_zero(caplog):
    log = logging.getLogger("earshot.test_progress")
    with caplog.at_level(logging.INFO, logger=log.name), Progress("extract", 0, unit="tracks", log=log) as p:
        p.advance(0)
    assert caplog.records[0].getMessage().startswith("extract: 0/0 tracks (100%)")


class FakeTracker:
    """Spark's status tracker as spark_tasks reads it: one job of two stages, finishing as it is polled."""

    def __init__(self):
        self.jobs = [7]  # a job from before the block: not counted
        self.polls = 0

    def getJobIdsForGroup(self, group):
        return self.jobs

    def getJobInfo(self, job):
        return type("Job", (), {"stageIds": [1, 2] if job == 8 else [0]})()

    def getStageInfo(self, stage):
        self.polls += 1
        done = min(self.polls // 2, 4)
        return type("Stage", (), {"numTasks": 4, "numCompletedTasks": done if stage == 1 else 0})()


def test_spark_tasks_logs_the_tasks_of_the_jobs_started_in_the_block(caplog):
    import time

    from spark_jobs.progress import spark_tasks

    tracker = FakeTracker()
    spark = type("Spark", (), {"sparkContext": type("Sc", (), {"statusTracker": lambda self: tracker})()})()
    log = logging.getLogger("earshot.test_progress")
    with (
        caplog.at_level(logging.INFO, logger=log.name),
        spark_tasks(spark, "build-index", log=log, poll_s=0.01, log_every_s=0.0),
    ):
        tracker.jobs = [7, 8]
        time.sleep(0.3)
    lines = [r.getMessage() for r in caplog.records]
    assert lines and all(line.startswith("build-index: ") and line.endswith(")") for line in lines)
    assert all("/8 tasks" in line for line in lines), "two stages of 4 tasks; the older job left out"
    assert "build-index: 4/8 tasks (50%)" in lines
