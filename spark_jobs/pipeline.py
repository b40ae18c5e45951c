"""Batch jobs one after another in one Spark application: ``./spark-submit.sh pipeline [STEP ...]``.

Each job submitted on its own is an application of its own: a driver JVM to start and, on a cluster,
executors that fetch and unpack the packed Python environment before their first task (about 16 s
each on the test suite's standalone cluster). A pipeline pays for that once. A step is a job's name,
with its options in the same word when it has any::

    ./spark-submit.sh --master spark://host:7077 pipeline "sample-library --tracks 20" ingest extract build-index

Every step's options are checked before the first step runs (a typo fails at once, status 2). The
steps then run in order on one session, each printing its own summary, and the first that fails ends
the pipeline with its status; the last line gives each step's time. Steps are the batch jobs: not the
stream (it does not end) and not the commands that run without Spark.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import time
from types import ModuleType

from conf.errors import EarshotError
from conf.settings import Settings
from spark_jobs.session import build_spark

log = logging.getLogger(__name__)

STEPS = ("ingest", "extract", "build-index")
NOT_A_STEP = {"stream", "pipeline"}  # besides the jobs that run without Spark (main.PLAIN_PYTHON_JOBS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "steps",
        nargs="*",
        metavar="STEP",
        default=list(STEPS),
        help=f"a batch job, with its options in the same quoted word (default: {' '.join(STEPS)})",
    )


def plan(steps: list[str]) -> list[tuple[str, ModuleType, argparse.Namespace]]:
    """Each step's job, module and parsed options, all checked before any runs."""
    from spark_jobs.main import JOBS, PLAIN_PYTHON_JOBS, job_arguments

    batch = [name for name in JOBS if name not in PLAIN_PYTHON_JOBS | NOT_A_STEP]
    planned = []
    for step in steps:
        try:
            words = shlex.split(step)
        except ValueError as exc:
            raise EarshotError(f"step {step!r}: {exc}") from None
        if not words:
            raise EarshotError("an empty step; name a batch job: " + ", ".join(batch))
        if words[0] not in batch:
            raise EarshotError(f"{words[0]!r} is not a batch job a pipeline runs; steps: {', '.join(batch)}")
        module, args = job_arguments(words[0], words[1:])
        planned.append((words[0], module, args))
    return planned


def main(settings: Settings, args: argparse.Namespace) -> int:
    steps = plan(args.steps)
    build_spark(settings, app_name="pipeline")  # the application's name; each step gets this session
    timings: list[str] = []
    for name, module, step_args in steps:
        started = time.perf_counter()
        log.info("pipeline: %s", name)
        try:
            status = int(module.main(settings, step_args) or 0)
        except EarshotError as exc:  # the entry point prints it in one line: say which step it was
            raise EarshotError(f"step {name}: {exc}; the steps after it did not run") from exc
        timings.append(f"{name} {time.perf_counter() - started:.0f} s")
        if status:
            print(f"pipeline: {name} ended with status {status}; the steps after it did not run")  # noqa: T201
            return status
    print(f"pipeline: {len(steps)} steps in one application ({', '.join(timings)})")  # noqa: T201
    return 0
