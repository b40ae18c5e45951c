"""The demo: the local stack, the pipeline's jobs in order, then the stream, a gentle simulator and the dashboard.

Runs in plain Python (not under spark-submit): the batch jobs run as one
``./spark-submit.sh pipeline`` (one Spark application, one JVM start for all of them).
A second run reuses what is there (the stack, the library, extracted features,
the stream's checkpoint), and skips the pipeline altogether when the library's
files (paths, sizes, times) are unchanged since the last pipeline and its index
is still published (``--rebuild`` runs it anyway). After the pipeline it starts, in the background,
``stream``, ``simulate`` (a few listeners at a few events per second) and the
Streamlit dashboard on 127.0.0.1, prints the address, and stops all three
(and the stack, if it started it) on Ctrl-C. ``--no-serve`` stops after the
pipeline, and stops the stack too if it started it. Their logs go to ``<state_root>/logs``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conf.errors import EarshotError
from conf.settings import QUICK_JIT, REPO_ROOT, Settings, load_settings
from index import store
from index.manifest import IndexError_
from services import real_music, stack
from tools.user import fresh_credentials

log = logging.getLogger("earshot.demo")


DEMO_USER = "demo"  # the players' account the demo makes (new credentials each run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--master", default="local[2]", help="Spark master for the demo's jobs")
    parser.add_argument("--tracks", type=int, default=300, help="size of the sample library")
    parser.add_argument("--port", type=int, default=8501, help="the dashboard's port on 127.0.0.1")
    parser.add_argument("--rate", type=float, default=3.0, help="the background simulator's events per second")
    parser.add_argument("--no-serve", action="store_true", help="run the pipeline, then stop")
    parser.add_argument(
        "--music",
        metavar="DIR",
        help="run the demo on this folder of music (tags first, then Artist/Album/NN Title.ext); "
        "default: the real-music library of services/real-music.sh, built on first use where Debian's packages can "
        "be fetched, else the synthetic one",
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="use the synthetic library (no real-music download)"
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="run the pipeline even when the library is unchanged since the last run"
    )


REAL_MUSIC = REPO_ROOT / ".earshot" / "real-music"  # where services/real-music.sh lays its library out


def choose_music(args: argparse.Namespace, build: Callable[[Path], int] | None = None) -> Path | None:
    """The folder of music the demo plays: ``--music``; else the real-music library, built first when it is not
    (``services.real_music.ensure``, or ``build``); else None (the synthetic library), saying why in one line."""
    if args.music:
        folder = Path(args.music).expanduser().resolve()
        if not folder.is_dir():
            raise EarshotError(f"demo --music {args.music}: not a folder")
        return folder
    if args.synthetic:
        return None
    if not (REAL_MUSIC / ".complete").exists():
        print(f"demo: building the real-music library in {REAL_MUSIC} from Debian's packages "  # noqa: T201
              f"{', '.join(real_music.PACKAGES)} (about 330 MB, once)", flush=True)  # fmt: skip
    try:
        (build or real_music.ensure)(REAL_MUSIC)
    except real_music.Unavailable as exc:
        print(f"demo: no real music ({exc}); playing the synthetic sample library instead")  # noqa: T201
        return None
    return REAL_MUSIC


def music_environment(settings: Settings, folder: Path) -> dict[str, str]:
    """Settings for a demo over ``folder``: a lake, index, checkpoints and database of its own.

    The synthetic library's catalogue, features and listeners never mix with the folder's,
    and a second demo over the same folder reuses what the first one built.
    """
    tag = hashlib.sha256(str(folder).encode()).hexdigest()[:8]
    home = Path(settings.paths.state_root).resolve() / f"music-{tag}"
    return {
        "EARSHOT_LIBRARY_ROOT": str(folder),
        "EARSHOT_LAKE_ROOT": str(home / "lake"),
        "EARSHOT_INDEX_ROOT": str(home / "index"),
        "EARSHOT_CHECKPOINT_ROOT": str(home / "checkpoints"),
        "MONGO_DATABASE": f"{settings.mongo.database}_music_{tag}",
    }


def steps(args: argparse.Namespace, music: Path | None = None) -> list[tuple[str, list[str]]]:
    """The jobs the demo runs, in order, with their arguments. Each reuses earlier work:
    the library is made once, ingest and extract only touch new or changed tracks."""
    if music is not None:
        return [("ingest", ["--folder", str(music)]), ("extract", []), ("build-index", [])]
    return [
        ("sample-library", ["--tracks", str(args.tracks)]),
        ("ingest", []),
        ("extract", []),
        ("build-index", []),
    ]


def batch_environ(settings: Settings) -> dict[str, str]:
    """The batch steps' environment: their JVMs keep the JIT at its quick tier unless ``spark.jvm_options``
    says otherwise (the pipeline is a JVM of a few minutes, which would spend much of its CPU compiling Spark)."""
    return {**os.environ, "EARSHOT__SPARK__JVM_OPTIONS": settings.spark.jvm_options or QUICK_JIT}


def pipeline_command(master: str, jobs: list[tuple[str, list[str]]]) -> list[str]:
    """The batch jobs as one ``pipeline`` application: each step one word, a job and its options."""
    return [str(REPO_ROOT / "spark-submit.sh"), "--master", master, "pipeline", *(shlex.join([j, *a]) for j, a in jobs)]


def run_pipeline(jobs: list[tuple[str, list[str]]], *, master: str, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    cmd = pipeline_command(master, jobs)
    log.info("running %s", shlex.join(cmd[1:]))
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=env)  # noqa: S603 - our own launcher
    if result.returncode != 0:
        raise EarshotError(f"the demo's pipeline failed with status {result.returncode}; see its output above")
    return time.perf_counter() - started


def background(settings: Settings, args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """The long-running parts the demo starts after the pipeline: (name, command)."""
    launcher = str(REPO_ROOT / "spark-submit.sh")
    return [
        ("stream", [launcher, "--master", args.master, "stream"]),
        ("simulate", [launcher, "simulate", "--listeners", "6", "--rate", str(args.rate), "--duration", "0"]),
        ("serve", [launcher, "serve"]),
        (
            "dashboard",
            [
                sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "dashboard" / "app.py"),
                "--server.address", "127.0.0.1", "--server.port", str(args.port), "--server.headless", "true",
                "--browser.gatherUsageStats", "false",
            ],
        ),
    ]  # fmt: skip


def start_background(
    settings: Settings, args: argparse.Namespace, started: list[tuple[str, subprocess.Popen]]
) -> list[tuple[str, subprocess.Popen]]:
    """Start the background processes, each added to ``started`` as it starts: a signal half way through still
    leaves the caller every process to stop."""
    logs = Path(settings.paths.state_root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name, cmd in background(settings, args):
        proc = subprocess.Popen(  # noqa: S603 - our own commands
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=(logs / f"demo-{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
        started.append((name, proc))
        log.info("started %s (pid %s), log %s", name, proc.pid, logs / f"demo-{name}.log")
    return started


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP (systemd, a container runtime, `kill`, a closed terminal) stop the demo like Ctrl-C."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def stop_background(started: list[tuple[str, subprocess.Popen]]) -> None:
    for _, proc in reversed(started):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for name, proc in reversed(started):
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        print(f"demo: stopped {name}")  # noqa: T201


def library_fingerprint(settings: Settings) -> str | None:
    """A hash of every file's path, size and mtime under the library root (None when there is none)."""
    root = Path(settings.paths.library_root)
    if not root.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        st = path.stat()
        # A name that is not UTF-8 (ingest names such files) is hashed by its bytes, as it is on disk.
        digest.update(f"{path.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def pipeline_stamp(settings: Settings) -> str | None:
    """The library's fingerprint and the settings that shape the pipeline's output (a changed
    ``index.space`` or ``extract.embedding`` runs the pipeline again)."""
    fingerprint = library_fingerprint(settings)
    if fingerprint is None:
        return None
    e, i = settings.extract, settings.index
    return f"{fingerprint} {e.feature_version} {e.embedding} {e.clip_seconds} {i.space} {i.pca_components} {i.shards}"


def pipeline_is_current(settings: Settings, stamp: Path) -> bool:
    """True when the last pipeline ran over this very library, with these settings, and its index is still
    published."""
    try:
        store.resolve(Path(settings.paths.index_root))
    except IndexError_:
        return False
    want = pipeline_stamp(settings)
    return want is not None and stamp.exists() and stamp.read_text().strip() == want


def main(settings: Settings, args: argparse.Namespace) -> int:
    stop_on_signals()
    music = choose_music(args)
    if music is not None:
        os.environ.update(music_environment(settings, music))
        settings = load_settings()
        print(f"demo: the music in {music} (database {settings.mongo.database})")  # noqa: T201
    else:
        print("demo: the synthetic sample library (--music DIR plays a folder of yours)")  # noqa: T201
    services_were_up = stack.kafka_healthy(settings) and stack.mongo_healthy(settings)
    for line in stack.up(settings):
        print(line)  # noqa: T201 - command-line output
    stamp = Path(settings.paths.lake_root).parent / "demo-pipeline.stamp"
    if not args.rebuild and pipeline_is_current(settings, stamp):
        print("demo: the library is unchanged since the last run and its index is published; skipping the pipeline")  # noqa: T201
    else:
        seconds = run_pipeline(steps(args, music), master=args.master, env=batch_environ(settings))
        stamp.write_text(pipeline_stamp(settings) or "")
        print(f"demo: pipeline done in {seconds:.0f} s")  # noqa: T201
    sys.stdout.flush()
    if args.no_serve:  # the pipeline's results stay (lake, database files, index); a stack it started stops
        if not services_were_up:
            for line in stack.down(settings):
                print(line)  # noqa: T201
        return 0
    password, api_key = fresh_credentials(settings, DEMO_USER)
    started: list[tuple[str, subprocess.Popen]] = []
    try:  # from before the first start: a signal at any moment stops what has started
        start_background(settings, args, started)
        print(  # noqa: T201
            f"demo: the dashboard is at http://127.0.0.1:{args.port}/ (the stream needs about 30 s to start); "
            f"players (Subsonic/OpenSubsonic apps): server http://{settings.api.host}:{settings.api.port}, user "
            f"{DEMO_USER}, password {password} (or API key {api_key}); Ctrl-C stops everything the demo started",
            flush=True,
        )
        while all(proc.poll() is None for _, proc in started):
            time.sleep(1.0)
        failed = [name for name, proc in started if proc.poll() is not None]
        raise EarshotError(f"demo: {', '.join(failed)} stopped on its own; see {settings.paths.state_root}/logs")
    except KeyboardInterrupt:
        print("demo: stopping", flush=True)  # noqa: T201
    finally:
        stop_background(started)
        if not services_were_up:
            for line in stack.down(settings):
                print(line)  # noqa: T201
    return 0
