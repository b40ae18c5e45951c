"""The demo: the local stack, then the pipeline's jobs in order, each through the launcher.

Runs in plain Python (not under spark-submit): each step is its own
``./spark-submit.sh <job>`` so that a step's Spark session ends with it.
A second run reuses what is there (the stack, the library, extracted features).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time

from conf.settings import REPO_ROOT, Settings
from services import stack
from spark_jobs.errors import EarshotError

log = logging.getLogger("earshot.demo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--master", default="local[2]", help="Spark master for the demo's jobs")
    parser.add_argument("--tracks", type=int, default=300, help="size of the sample library")


def steps(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """The jobs the demo runs, in order, with their arguments. Each reuses earlier work:
    the library is made once, ingest and extract only touch new or changed tracks."""
    return [
        ("sample-library", ["--tracks", str(args.tracks)]),
        ("ingest", []),
        ("extract", []),
        ("build-index", []),
    ]


def run_job(job: str, job_args: list[str], *, master: str) -> float:
    started = time.perf_counter()
    cmd = [str(REPO_ROOT / "spark-submit.sh"), "--master", master, job, *job_args]
    log.info("running %s", " ".join(cmd[1:]))
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL)  # noqa: S603 - our own launcher
    if result.returncode != 0:
        raise EarshotError(f"demo step {job!r} failed with status {result.returncode}; see its output above")
    return time.perf_counter() - started


def main(settings: Settings, args: argparse.Namespace) -> int:
    for line in stack.up(settings):
        print(line)  # noqa: T201 - command-line output
    timings = [(job, run_job(job, job_args, master=args.master)) for job, job_args in steps(args)]
    print("demo: done")  # noqa: T201
    for job, seconds in timings:
        print(f"  {job:<20} {seconds:7.1f} s")  # noqa: T201
    sys.stdout.flush()
    return 0
