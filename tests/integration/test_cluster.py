"""A real Spark standalone cluster: a master and two workers started from the venv's own Spark.

The batch jobs (as one application: the pipeline job) and the stream run through
``./spark-submit.sh --master spark://...`` exactly as the README's cluster section says. Executors
get the code, settings and packed Python environment the launcher ships (``tools/package.py``): the
workers run with no PYTHONPATH and no venv of their own, so a job that needed the checkout's
editable install would fail there.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conf.settings import QUICK_JIT, REPO_ROOT, load_settings
from connectors import mongo_io
from events.producer import ListenProducer, new_event
from tests.integration.streaming import stream_environ, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.spark]

SPARK_CLASS = REPO_ROOT / ".venv" / "bin" / "spark-class"
WORKERS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_home() -> str:
    import pyspark

    return os.path.dirname(pyspark.__file__)


def master_state(web_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/json/", timeout=5) as r:
        return json.load(r)


def worker_environ() -> dict[str, str]:
    """What a worker host has: Java and Spark, no project Python on any path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK", "PYTHON", "VIRTUAL_ENV", "EARSHOT"))}
    env.update(SPARK_HOME=spark_home(), SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
    env["SPARK_DAEMON_JAVA_OPTS"] = QUICK_JIT  # the master's and workers' own JVMs
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("cluster")
    port, web = free_port(), free_port()
    env = worker_environ()
    procs = []

    def start(name: str, *args: str) -> None:
        log = (root / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [str(SPARK_CLASS), *args],
                env=env,
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
          "--webui-port", str(web))  # fmt: skip
    work_dirs = []
    try:
        wait_for(lambda: _answers(web), timeout=90, what=f"the standalone master (log: {root / 'master.log'})")
        for i in range(WORKERS):
            work = root / f"worker-{i}"
            work.mkdir()
            work_dirs.append(work)
            start(f"worker-{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                  "--webui-port", str(free_port()), "--cores", "1", "--memory", "1g", "--work-dir", str(work),
                  f"spark://127.0.0.1:{port}")  # fmt: skip
        wait_for(
            lambda: sum(w["state"] == "ALIVE" for w in master_state(web)["workers"]) == WORKERS,
            timeout=90,
            what=f"{WORKERS} workers to register (logs: {root})",
        )
        yield {"url": f"spark://127.0.0.1:{port}", "web": web, "work_dirs": work_dirs, "root": root}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _answers(web: int) -> bool:
    try:
        return bool(master_state(web))
    except OSError:
        return False


def submit(cluster: dict, env: dict[str, str], *job: str, log: Path, timeout: float = 600) -> list[str]:
    """Run one job on the cluster; its output lines (also appended to ``log``)."""
    # The pipeline of four batch jobs over 20 tracks, extract with the musicnn embedding, took about 140 s here.
    command = [str(REPO_ROOT / "spark-submit.sh"), "--master", cluster["url"], "--executor-memory", "768m", *job]
    run = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    with log.open("ab") as out:
        out.write(run.stdout)
    assert run.returncode == 0, f"{' '.join(job)} failed on the cluster (log: {log})"
    return run.stdout.decode(errors="replace").splitlines()


def bare_python(folder: Path) -> Path:
    """A Python with Earshot's dependencies on its path but not Earshot (a cluster's own interpreter)."""
    subprocess.run(["python3.11", "-m", "venv", "--without-pip", str(folder)], check=True)
    site = next((REPO_ROOT / ".venv" / "lib").glob("python*/site-packages"))
    # A path line in a .pth file is put on sys.path without reading that folder's own .pth files, so the
    # checkout's editable install (a .pth of the venv) is not.
    next((folder / "lib").glob("python*/site-packages")).joinpath("deps.pth").write_text(f"{site}\n")
    probe = subprocess.run([str(folder / "bin" / "python"), "-c", "import numpy, spark_jobs"], cwd=folder,
                           capture_output=True, text=True)  # fmt: skip
    assert "No module named 'spark_jobs'" in probe.stderr, probe.stderr
    return folder / "bin" / "python"


def archived(settings) -> set[str]:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return set(DeltaTable(settings.lake_table("events")).to_pandas(columns=["event_id"])["event_id"])
    except TableNotFoundError:
        return set()


def executor_dirs(cluster: dict) -> list[Path]:
    """Each executor's folder on the workers: app-*/<executor id>/ (what the master handed out)."""
    return [d for w in cluster["work_dirs"] for app in w.glob("app-*") for d in app.iterdir() if d.is_dir()]


def test_the_pipeline_and_the_stream_run_on_a_standalone_cluster(stack, cluster, tmp_path):
    root = tmp_path / "data"
    # The stream's executors get the index from the driver through Spark, not from the index root.
    env = stream_environ(root, "cluster", EARSHOT_LIBRARY_ROOT=str(root / "library"),
                         EARSHOT__STREAM__INDEX_DELIVERY="spark")  # fmt: skip
    settings = load_settings(env)
    log = tmp_path / "jobs.log"
    # The batch jobs as one application (the pipeline job): one driver and one set of executors that unpack
    # the shipped environment once, not once per job.
    steps = ("sample-library --tracks 20", "ingest", "extract", "build-index")
    printed = submit(cluster, env, "pipeline", *steps, log=log)
    # Quiet output: a pipeline that does not fail says what each step did in a few lines (no Ivy report, no
    # Spark chatter, no decoder complaints about the planted broken files: their error rows say it).
    assert len(printed) < 25, "the pipeline printed:\n" + "\n".join(printed)
    summaries = [line.split(":")[0] for line in printed if not line[:1].isdigit()]
    assert [s for s in summaries if s != "earshot package"] == [*(s.split()[0] for s in steps), "pipeline"], printed
    assert printed[-1].startswith("pipeline: 4 steps in one application"), printed

    # The pipeline was one app and ran with the workers' cores; executors unpacked the shipped environment.
    state = master_state(cluster["web"])
    apps = [a["name"] for a in state["completedapps"]]
    assert apps == ["earshot-pipeline"], f"the batch jobs were not one cluster app: {apps}"
    assert all(a["cores"] >= 1 for a in state["completedapps"])
    dirs = executor_dirs(cluster)
    assert {d.parents[1] for d in dirs} == set(cluster["work_dirs"]), "both workers ran executors"
    assert all((d / "env" / "bin" / "python").exists() for d in dirs), "each executor has the packed environment"
    assert not [p for d in dirs for p in (d / "env" / "lib").glob("python*/site-packages/__editable__*")]

    client = mongo_io.connect(settings)
    db = mongo_io.database(client, settings)
    try:
        analysed = {"features": {"$exists": True}}
        features = db["tracks"].count_documents(analysed)
        assert features >= 10, f"the executors wrote features of {features} tracks to Mongo"
        # The stream runs with the cluster's own Python (spark.python_env: none), one that has Earshot's
        # dependencies but not Earshot: the executors get the code from --py-files, and so must the Python
        # the driver's JVM starts to set up the stateful processor.
        stream_log = tmp_path / "stream.log"
        python = bare_python(tmp_path / "cluster-python")
        command = [str(REPO_ROOT / "spark-submit.sh"), "--master", cluster["url"], "--executor-memory", "768m",
                   "--conf", f"spark.pyspark.python={python}", "stream", "--run-seconds", "150"]  # fmt: skip
        own = {**env, "EARSHOT__SPARK__PYTHON_ENV": "none"}
        proc = subprocess.Popen(command, env=own, stdout=stream_log.open("wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        sent: set[str] = set()
        try:
            ids = [int(d["_id"]) for d in db["tracks"].find(analysed, {"_id": 1}).limit(6)]
            users = ["cluster-a", "cluster-b", "cluster-c"]
            deadline = time.monotonic() + 240
            with ListenProducer(settings.kafka.bootstrap_servers, topic=settings.kafka.listens_topic) as producer:
                while time.monotonic() < deadline and db["recommendations"].count_documents({}) < len(users):
                    for i, user in enumerate(users):
                        event = new_event(user_id=user, track_id=ids[i % len(ids)], type="like")
                        producer.send(event)
                        sent.add(event["event_id"])
                    producer.flush()
                    time.sleep(3)
            wait_for(
                lambda: db["recommendations"].count_documents({"items.track_id.0": {"$exists": True}}) == len(users),
                timeout=30,
                what=f"recommendations from the stream on the cluster (log: {stream_log})",
            )
            running = [a["name"] for a in master_state(cluster["web"])["activeapps"]]
            assert "earshot-stream" in running, f"the stream is not a cluster app: {running}"
            shipped = [p for d in executor_dirs(cluster) for p in d.glob("index-v*/v*/manifest.json")]
            assert shipped, "the index version reached the stream's executors through Spark"
            # The archive's executors take the index the way the recommender's do: every event lands in Delta.
            wait_for(lambda: archived(settings) >= sent, timeout=90,
                     what=f"all {len(sent)} events in Delta events (log: {stream_log})")  # fmt: skip
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    finally:
        client.drop_database(settings.mongo.database)
        client.close()
