"""The one entry point spark-submit runs: ``main.py <job> [job args]``.

Each job is a module of ``spark_jobs`` with ``add_arguments(parser)`` and
``main(settings, args) -> int``. Settings are loaded here, once, and passed
down. Errors an operator can fix (a bad setting, a service that does not
answer, bad input) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):  # run as a file by spark-submit: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conf.errors import EarshotError  # noqa: E402
from conf.settings import SettingsError, load_settings  # noqa: E402

# name -> (module, one line for --help). The launcher and the README list these.
JOBS: dict[str, tuple[str, str]] = {
    "smoke": ("spark_jobs.smoke", "prove the wiring: Delta write/read, Kafka via Structured Streaming, Mongo upsert"),
    "sample-library": (
        "spark_jobs.sample_library",
        "write a synthetic music library in the FMA layout, with planted broken files",
    ),
    "ingest": (
        "spark_jobs.ingest",
        "catalogue from FMA metadata (or any folder of music) into Delta and Mongo `tracks`",
    ),
    "extract": (
        "spark_jobs.extract",
        "audio features (FMA's 518 + tempo) with a pandas UDF into Delta `features` and Mongo",
    ),
    "import-fma-features": (
        "spark_jobs.import_fma_features",
        "load FMA's own features.csv into Delta `features` (no audio needed)",
    ),
    "build-index": (
        "spark_jobs.build_index",
        "standardise, PCA and k-means shard the features (index.fit over partitions); build Annoy shards; publish",
    ),
    "check": (
        "spark_jobs.check",
        "compare Delta `tracks`/`features` with Mongo `tracks`; --repair writes Mongo from Delta",
    ),
    "playlists": (
        "spark_jobs.playlists",
        "a mix for every listener of the events archive (their taste, ordered to flow) into Mongo `playlists`",
    ),
    "import-history": (
        "spark_jobs.import_history",
        "a listener's ListenBrainz or Last.fm export matched to the catalogue, archived in Delta `events`, reported",
    ),
    "similar": (
        "tools.similar",
        "print the tracks most like a track (or its song radio) from the published index",
    ),
    "stream": (
        "spark_jobs.stream",
        "listening events from Kafka -> taste vectors in Spark state -> recommendations in Mongo",
    ),
    "simulate": (
        "tools.simulate",
        "synthetic listeners who play, finish, skip, like, dislike and share at a target rate (plus bad events)",
    ),
    "pipeline": (
        "spark_jobs.pipeline",
        "batch jobs one after another in one Spark application (default: ingest, extract, build-index)",
    ),
    "package": (
        "tools.package",
        "zip the code and pack .venv for executors on a cluster (.earshot/dist; the launcher runs it for you)",
    ),
    "serve": (
        "tools.serve",
        "the OpenSubsonic server for player apps on api.host:api.port (127.0.0.1:4533; no Spark)",
    ),
    "user": (
        "tools.user",
        "listener accounts for the OpenSubsonic server: user add|list|remove|reset NAME",
    ),
    "demo": (
        "tools.demo",
        "the stack, the pipeline, then stream + simulator + dashboard on 127.0.0.1:8501 (the README's main command)",
    ),
}
# Jobs that orchestrate other jobs and run in plain Python, not under spark-submit.
PLAIN_PYTHON_JOBS: set[str] = {"demo", "package", "serve", "similar", "simulate", "user"}


def usage() -> str:
    width = max(len(name) for name in JOBS)
    lines = [
        "usage: ./spark-submit.sh [spark-submit options] <job> [job options]",
        "",
        "Runs an Earshot job through spark-submit with the Kafka and Delta connectors.",
        "spark-submit options (--master, --conf, --executor-memory, ...) pass through;",
        "the master defaults to spark.master in the settings (local[*]).",
        "",
        "jobs:",
        *(f"  {name:<{width}}  {summary}" for name, (_, summary) in JOBS.items()),
        "",
        "./spark-submit.sh <job> --help shows a job's own options.",
    ]
    return "\n".join(lines)


def launcher_env() -> str:
    """Shell assignments the launcher evaluates (it fails here, in one line, on a bad setting)."""
    from spark_jobs.session import connector_conf, connector_environ, jvm_conf, local_master_conf
    from tools.package import driver_folder

    settings = load_settings()
    jvm = jvm_conf(settings)
    values = {
        "EARSHOT_MASTER": settings.spark.master,
        # One KEY=VALUE per line, like EARSHOT_LOCAL_CONFS: how a cluster's and a local master's JVMs get the
        # connectors (spark_jobs.session.connector_conf).
        "EARSHOT_CONNECTOR_CONFS": _conf_lines(connector_conf(settings)),
        "EARSHOT_LOCAL_CONNECTOR_CONFS": _conf_lines(connector_conf(settings, local=True)),
        "EARSHOT_LOCAL_CLASSPATH": connector_environ(settings, os.environ).get("SPARK_DIST_CLASSPATH", ""),
        "EARSHOT_DRIVER_JAVA_OPTIONS": jvm["spark.driver.extraJavaOptions"],
        "EARSHOT_EXECUTOR_JAVA_OPTIONS": jvm.get("spark.executor.extraJavaOptions", ""),
        "EARSHOT_DRIVER_MEMORY": settings.spark.driver_memory,
        "NUMBA_CACHE_DIR": settings.paths.numba_cache_dir,
        "EARSHOT_DRIVER_DIR": str(driver_folder(settings)),
        "EARSHOT_PLAIN_PYTHON_JOBS": " ".join(sorted(PLAIN_PYTHON_JOBS)),
        "EARSHOT_JOBS": " ".join(JOBS),
        # One KEY=VALUE per line: the --conf settings of a local master (spark_jobs.session).
        "EARSHOT_LOCAL_CONFS": _conf_lines(local_master_conf(settings)),
    }
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


def _conf_lines(conf: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in conf.items())


def job_arguments(name: str, argv: list[str]) -> tuple[ModuleType, argparse.Namespace]:
    """The job's module and its options parsed (a bad option exits with status 2 and the job's usage)."""
    module = importlib.import_module(JOBS[name][0])
    parser = argparse.ArgumentParser(prog=f"./spark-submit.sh {name}", description=JOBS[name][1])
    module.add_arguments(parser)
    return module, parser.parse_args(argv)


def run(argv: list[str]) -> int:
    # A cluster driver's JVM runs in the launcher's driver folder (tools/package.py); this
    # process works from the folder the command was given in, so relative paths mean what they say.
    caller = os.environ.pop("EARSHOT_CALLER_CWD", None)
    if caller:
        os.chdir(caller)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(usage() + "\n")
        return 0
    if argv[0] == "--launcher-env":
        try:
            sys.stdout.write(launcher_env())
        except SettingsError as exc:
            sys.stderr.write(f"earshot: {exc}\n")
            return 2
        return 0
    name, rest = argv[0], argv[1:]
    if name not in JOBS:
        sys.stderr.write(f"earshot: unknown job {name!r}; jobs: {', '.join(JOBS)}\n")
        return 2
    module, args = job_arguments(name, rest)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("py4j", "kafka", "pymongo", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(module.main(load_settings(), args) or 0)
    except (SettingsError, EarshotError) as exc:
        sys.stderr.write(f"earshot {name}: {exc}\n")
        return 2
    finally:
        # Jobs leave their session open (tests call them in-process); the entry point ends it.
        if name not in PLAIN_PYTHON_JOBS:
            from pyspark.sql import SparkSession

            active = SparkSession.getActiveSession()
            if active is not None:
                active.stop()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
