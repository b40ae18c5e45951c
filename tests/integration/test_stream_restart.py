"""kill -9 in the middle of the stream, restart from the checkpoint: the same profiles as an undisturbed run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from conf.settings import load_settings
from connectors import mongo_io
from events.producer import ListenProducer, new_event
from index.reader import Index
from tests.integration.streaming import publish_synthetic_index, stream_environ, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.spark]

TYPES = ["play", "complete", "skip", "like", "dislike"]


def send_phase(producer: ListenProducer, ids: list[int], rng: random.Random, n: int, users: list[str]) -> None:
    for _ in range(n):
        producer.send(new_event(user_id=rng.choice(users), track_id=rng.choice(ids), type=rng.choice(TYPES)))
    producer.flush()


def applied(db) -> int:
    return sum(d["profile"]["events"] for d in db["recommendations"].find({}, {"profile.events": 1}))


def profiles(db) -> dict[str, dict]:
    """Each listener's profile and recommendations, without the fields that say when they were written."""
    skip = ("written_at", "batch_id", "events_in_batch")  # batch boundaries differ between the runs
    return {d.pop("_id"): {k: v for k, v in d.items() if k not in skip} for d in db["recommendations"].find()}


def start_stream(repo_root: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(repo_root / "spark-submit.sh"), "--master", "local[2]", "stream"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: kill -9 reaches the JVM and its Python workers
    )


@pytest.mark.parametrize(("listeners", "per_phase"), [(5, 60), (3000, 2000)], ids=["5-listeners", "3000-listeners"])
def test_kill_9_and_restart_leaves_the_profiles_of_an_undisturbed_run(
    stack, spark, tmp_path, repo_root, listeners, per_phase
):
    from spark_jobs import stream

    env = stream_environ(tmp_path / "killed", "restart")
    killed = load_settings(env)
    publish_synthetic_index(killed)
    from connectors.kafka_io import ensure_topic

    ensure_topic(killed, killed.kafka.listens_topic)  # events are sent before the stream first starts
    ids = sorted(Index.open(killed.paths.index_root).catalogue.tracks)
    rng = random.Random(11)
    users = [f"r{i}" for i in range(listeners)]
    client = mongo_io.connect(killed)
    db = mongo_io.database(client, killed)
    log = tmp_path / "stream.log"
    proc = None
    try:
        with ListenProducer(killed.kafka.bootstrap_servers, topic=killed.kafka.listens_topic) as producer:
            send_phase(producer, ids, rng, per_phase, users)
            proc = start_stream(repo_root, env, log)
            wait_for(lambda: applied(db) == per_phase, timeout=180, what=f"the first phase (log: {log})")
            send_phase(producer, ids, rng, per_phase, users)
            wait_for(lambda: applied(db) > per_phase, timeout=60, what="the second phase to start")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            send_phase(producer, ids, rng, per_phase, users)
        proc = start_stream(repo_root, env, log)
        wait_for(lambda: applied(db) >= 3 * per_phase, timeout=180, what=f"the restarted stream (log: {log})")
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        after_restart = profiles(db)

        # The same topic from the start, with a fresh checkpoint and database, undisturbed.
        calm = load_settings(
            {
                **env,
                "MONGO_DATABASE": killed.mongo.database + "_calm",
                "EARSHOT_CHECKPOINT_ROOT": str(tmp_path / "calm-checkpoints"),
            }
        )
        calm_db = client[calm.mongo.database]
        queries, sink = stream.start(spark, calm, archive=False)
        try:
            wait_for(lambda: applied(calm_db) >= 3 * per_phase, timeout=120, what="the undisturbed run")
        finally:
            stream.stop(spark, queries, sink)
        undisturbed = profiles(calm_db)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        client.drop_database(killed.mongo.database)
        client.drop_database(killed.mongo.database + "_calm")
        client.close()
    assert applied_total(after_restart) == 3 * per_phase
    assert after_restart == undisturbed


def applied_total(profiles_by_user: dict[str, dict]) -> int:
    return sum(p["profile"]["events"] for p in profiles_by_user.values())
