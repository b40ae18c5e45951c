"""The local stack with plain clients: pymongo and kafka-python against the real servers."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT, load_settings

pytestmark = [pytest.mark.kafka, pytest.mark.mongo]


def test_status_exits_zero_when_both_are_healthy(stack):
    result = subprocess.run(
        [str(REPO_ROOT / "services" / "local-stack.sh"), "status"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kafka: healthy" in result.stdout and "mongodb: healthy" in result.stdout


def test_plain_pymongo_inserts_and_finds(mongo_db):
    mongo_db.things.insert_one({"_id": "a", "n": 1, "tags": ["x", "y"]})
    assert mongo_db.things.find_one({"_id": "a"}) == {"_id": "a", "n": 1, "tags": ["x", "y"]}


def test_lookups_and_upserts_by_id_use_the_id_index(mongo_db, stack):
    """FerretDB v1 (SQLite) scanned the whole collection for every update by _id; our build uses the index."""
    from pymongo import ReplaceOne

    mongo_db.by_id.insert_many([{"_id": f"u{i}", "n": i} for i in range(50)])
    plan = mongo_db.command("explain", {"find": "by_id", "filter": {"_id": "u7"}})
    if "Plan" not in plan.get("queryPlanner", {}):
        pytest.skip("not our FerretDB build (an external MongoDB-protocol server answers)")
    assert any("USING INDEX" in line for line in plan["queryPlanner"]["Plan"]), plan
    mongo_db.by_id.bulk_write([ReplaceOne({"_id": f"u{i}"}, {"n": -i}, upsert=True) for i in range(45, 55)])
    assert mongo_db.by_id.count_documents({}) == 55
    assert mongo_db.by_id.find_one({"_id": "u47"}) == {"_id": "u47", "n": -47}


def test_setting_fields_of_new_and_existing_track_ids_inserts_the_new_and_keeps_the_rest(mongo_db, stack):
    """set_fields_many with integer ids (the catalogue's): new documents are inserted whole (FerretDB's $set upsert
    of a new integer _id read the whole collection, so a first ingest was quadratic), existing ones keep their
    other fields, an id twice in one call gets both, string ids take the plain $set."""
    from connectors import mongo_io

    mongo_io.set_fields_many(mongo_db, "tracks", [{"_id": 10**15 + i, "title": f"t{i}"} for i in range(250)])
    mongo_db.tracks.update_one({"_id": 10**15 + 3}, {"$set": {"features": [1.0, 2.0]}})
    mongo_io.set_fields_many(mongo_db, "tracks", [{"_id": 10**15 + 3, "title": "new title", "x": None},
                                                  {"_id": 7, "title": "fresh"}, {"_id": 7, "year": 1999}])  # fmt: skip
    assert mongo_db.tracks.count_documents({}) == 251
    assert mongo_db.tracks.find_one({"_id": 10**15 + 3}) == {"_id": 10**15 + 3, "title": "new title",
                                                             "features": [1.0, 2.0], "x": None}  # fmt: skip
    assert mongo_db.tracks.find_one({"_id": 7}) == {"_id": 7, "title": "fresh", "year": 1999}
    mongo_io.set_fields_many(mongo_db, "batches", [{"_id": "b1", "n": 1}])
    mongo_io.set_fields_many(mongo_db, "batches", [{"_id": "b1", "m": 2}])
    assert mongo_db.batches.find_one({"_id": "b1"}) == {"_id": "b1", "n": 1, "m": 2}


def test_a_nan_value_is_refused_with_a_reply_and_a_duplicate_id_as_one(mongo_db, stack):
    """Our build refuses NaN (FerretDB stores JSON) in its conversion of the request, as an error reply on a
    connection that stays open, and SQLite's unique-constraint code still says "duplicate key"."""
    from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure

    if "ferretdbVersion" not in mongo_db.client.admin.command("buildInfo"):
        pytest.skip("not our FerretDB build (MongoDB itself stores NaN)")
    mongo_db.nan.insert_one({"_id": 1, "x": 1.5})
    for doc in ({"_id": 2, "x": float("nan")}, {"_id": 3, "deep": {"list": [1.0, float("nan")]}}):
        with pytest.raises(OperationFailure, match="NaN is not supported") as refused:
            mongo_db.nan.insert_one(doc)
        assert not isinstance(refused.value, AutoReconnect)
    with pytest.raises(DuplicateKeyError):
        mongo_db.nan.insert_one({"_id": 1, "x": 2.5})
    assert list(mongo_db.nan.find({}, {"_id": 1, "x": 1})) == [{"_id": 1, "x": 1.5}]


def test_ending_sessions_is_answered_ok(mongo_db):
    """pymongo ends its sessions when a client closes (``endSessions``). FerretDB keeps none and answered "no
    such command", logged at warn for every client closed; our build answers ok, as MongoDB does."""
    client = mongo_db.client
    session = client.start_session()
    try:
        reply = client.admin.command("endSessions", [session.session_id])
    finally:
        session.end_session()
    assert reply["ok"] == 1.0


def test_plain_kafka_python_round_trips_a_message(stack):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from connectors.kafka_io import ensure_topic

    topic = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    assert ensure_topic(stack, topic, partitions=1)
    producer = KafkaProducer(bootstrap_servers=stack.kafka.bootstrap_servers)
    producer.send(topic, key=b"k", value=b"hello earshot").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=stack.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15000,
    )
    values = [m.value for m in itertools.islice(consumer, 1)]  # the first message, or none in 15 s
    ends = consumer.end_offsets([TopicPartition(topic, 0)])
    consumer.close()
    assert values == [b"hello earshot"] and ends == {TopicPartition(topic, 0): 1}


def _our_processes(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_a_second_stack_comes_up_and_down_leaves_nothing_behind(stack, tmp_path: Path):
    """A whole separate stack on other ports: up, status, down, and no process of it left."""
    state = tmp_path / "state"
    (state / "kafka").mkdir(parents=True)
    main_state = Path(stack.paths.state_root)
    # Reuse the installed binaries instead of building them again.
    (state / "bin").symlink_to(main_state / "bin")
    (state / "kafka" / "libs").symlink_to(main_state / "kafka" / "libs")
    env = {
        **os.environ,
        "EARSHOT_STATE_ROOT": str(state),
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "MONGO_URI": "mongodb://127.0.0.1:27018/",
    }
    script = str(REPO_ROOT / "services" / "local-stack.sh")

    def run(cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, cmd], capture_output=True, text=True, timeout=180, env=env)

    try:
        up = run("up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "started a KRaft broker at 127.0.0.1:19092" in up.stdout
        assert run("status").returncode == 0
        again = run("up")  # idempotent: reuses what is running
        assert "reusing the broker" in again.stdout and "reusing the server" in again.stdout
    finally:
        down = run("down")
    assert down.returncode == 0
    deadline = time.monotonic() + 30
    while _our_processes(str(state)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _our_processes(str(state)) == []
    assert run("status").returncode == 1
    # The main stack was not touched.
    assert load_settings({}).kafka.bootstrap_servers == "127.0.0.1:9092"
    assert subprocess.run([script, "status"], capture_output=True, timeout=60).returncode == 0
