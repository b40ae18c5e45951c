"""Faults under a steady load, on the real services: the stream waits out a database outage and loses nothing."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from pymongo import MongoClient

from conf.settings import Settings, load_settings
from connectors.kafka_io import ensure_topic
from events.producer import ListenProducer, new_event
from index.reader import Index
from tests.integration.streaming import publish_synthetic_index, stream_environ, wait_for
from tests.integration.test_stream_restart import start_stream

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.spark]
OUTAGE_S = 20


def spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ferretdb(binary: Path, port: int, data: Path, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(binary), f"-listen=127.0.0.1:{port}", f"-data={data}", "-log-level=warn"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    client = MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=500)
    try:
        wait_for(lambda: _pings(client), timeout=30, what=f"FerretDB on port {port}")
    finally:
        client.close()
    return proc


def _pings(client: MongoClient) -> bool:
    try:
        return bool(client.admin.command("ping"))
    except Exception:  # noqa: BLE001 - not up yet
        return False


def applied_by_listener(client: MongoClient, database: str) -> Counter:
    try:
        docs = client[database]["recommendations"].find({}, {"profile.events": 1})
        return Counter({d["_id"]: d["profile"]["events"] for d in docs})
    except Exception:  # noqa: BLE001 - the server is down or coming back
        return Counter()


def test_the_stream_waits_out_a_database_outage_and_applies_every_event_once(stack, settings, tmp_path, repo_root):
    port = spare_port()
    uri = f"mongodb://127.0.0.1:{port}/"
    env = stream_environ(tmp_path, "outage", MONGO_URI=uri)
    mine = load_settings(env)
    binary = Path(settings.paths.state_root) / "bin" / "ferretdb"
    data, db_log, stream_log = tmp_path / "ferretdb", tmp_path / "ferretdb.log", tmp_path / "stream.log"
    ferretdb = start_ferretdb(binary, port, data, db_log)
    publish_synthetic_index(mine)
    ensure_topic(mine, mine.kafka.listens_topic)
    ids = sorted(Index.open(mine.paths.index_root).catalogue.tracks)
    rng = random.Random(5)
    users = [f"o{i}" for i in range(40)]
    ledger: Counter = Counter()
    client = MongoClient(uri, serverSelectionTimeoutMS=1000)
    stream = None

    def send(producer: ListenProducer, n: int) -> None:
        for _ in range(n):
            user = rng.choice(users)
            producer.send(new_event(user_id=user, track_id=rng.choice(ids), type=rng.choice(["play", "like", "skip"])))
            ledger[user] += 1
        producer.flush()

    try:
        with ListenProducer(mine.kafka.bootstrap_servers, topic=mine.kafka.listens_topic) as producer:
            stream = start_stream(repo_root, env, stream_log)
            send(producer, 200)
            wait_for(lambda: applied_by_listener(client, mine.mongo.database) == ledger, timeout=180,
                     what=f"the first events (log: {stream_log})")  # fmt: skip
            ferretdb.terminate()
            ferretdb.wait(timeout=30)
            down_at = time.monotonic()
            while time.monotonic() - down_at < OUTAGE_S:  # a steady load while the database is down
                send(producer, 20)
                time.sleep(1.0)
            assert stream.poll() is None, f"the stream stopped during the outage (log: {stream_log})"
            ferretdb = start_ferretdb(binary, port, data, db_log)
            back_at = time.monotonic()
            wait_for(lambda: applied_by_listener(client, mine.mongo.database) == ledger, timeout=150,
                     what=f"every event applied after the outage (log: {stream_log})")  # fmt: skip
            caught_up_s = time.monotonic() - back_at
            send(producer, 50)  # and it goes on
            wait_for(lambda: applied_by_listener(client, mine.mongo.database) == ledger, timeout=60,
                     what="fresh recommendations after the outage")  # fmt: skip
        assert stream.poll() is None
        assert caught_up_s < 120, "fresh recommendations resume within two minutes of the database's return"
    finally:
        if stream is not None and stream.poll() is None:
            os.killpg(stream.pid, signal.SIGTERM)
            try:
                stream.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(stream.pid, signal.SIGKILL)
        client.close()
        ferretdb.terminate()
        ferretdb.wait(timeout=30)


def stream_case(tmp_path: Path, tag: str, **extra: str) -> tuple[dict[str, str], Settings, list[int]]:
    """A stream's own environment, settings, published synthetic index and topic, and its track ids."""
    env = stream_environ(tmp_path, tag, **extra)
    mine = load_settings(env)
    publish_synthetic_index(mine)
    ensure_topic(mine, mine.kafka.listens_topic)
    return env, mine, sorted(Index.open(mine.paths.index_root).catalogue.tracks)


def send_acknowledged(mine: Settings, ids: list[int], ledger: Counter, n: int, *, prefix: str) -> None:
    """Send ``n`` plays from 10 listeners; count in ``ledger`` each one the broker acknowledged."""
    with ListenProducer(mine.kafka.bootstrap_servers, topic=mine.kafka.listens_topic) as producer:
        sent = []
        for i in range(n):
            user = f"{prefix}{i % 10}"
            sent.append((user, producer.send(new_event(user_id=user, track_id=ids[i % len(ids)], type="play"))))
        producer.flush()
        for user, future in sent:
            future.get(timeout=60)  # acknowledged by the broker: it must be applied
            ledger[user] += 1


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_sigterm_stops_the_stream_and_a_corrupt_checkpoint_file_is_named_at_the_next_start(stack, tmp_path, repo_root):
    """SIGTERM to the stream's launcher (what systemd or `kill` sends) ends it and every process it started;
    a truncated checkpoint file then stops the next start with its path and what to do, before any batch."""
    env, mine, ids = stream_case(tmp_path, "stop")
    ledger: Counter = Counter()
    client = MongoClient(mine.mongo.uri, serverSelectionTimeoutMS=2000)
    log = tmp_path / "stream.log"
    stream = start_stream(repo_root, env, log)
    try:
        send_acknowledged(mine, ids, ledger, 100, prefix="t")
        wait_for(lambda: applied_by_listener(client, mine.mongo.database) == ledger, timeout=180,
                 what=f"the events (log: {log})")  # fmt: skip
        stream.send_signal(signal.SIGTERM)  # the launcher's process only, not its group
        assert stream.wait(timeout=90) == 0, f"the stream did not stop cleanly (log: {log})"
        wait_for(lambda: not group_alive(stream.pid), timeout=30, what="every process of the stream to end")
    finally:
        if group_alive(stream.pid):
            os.killpg(stream.pid, signal.SIGKILL)
        client.drop_database(mine.mongo.database)
        client.close()
    offsets = Path(mine.checkpoint("recommender")) / "offsets"
    newest = max((p for p in offsets.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    newest.write_bytes(newest.read_bytes()[:40])  # a disk that filled up mid-write
    run = subprocess.run([str(repo_root / "spark-submit.sh"), "--master", "local[2]", "stream"], env=env,
                         capture_output=True, text=True, timeout=180)  # fmt: skip
    said = run.stdout + run.stderr  # spark-submit joins its Python process's stderr to stdout
    assert run.returncode == 2, said[-3000:]
    assert f"checkpoint file {newest} is corrupt" in said and "out of the checkpoint" in said, said[-3000:]


def private_broker(settings: Settings, tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    """A broker of this test's own (free ports, its data under ``tmp_path``), started by the project's code:
    killing it leaves the shared broker, and any broker that is not this checkout's, alone."""
    port = spare_port()
    while not _free(port + 1):  # the controller listens on the next port
        port = spare_port()
    state = tmp_path / "state"
    (state / "kafka").mkdir(parents=True)
    (state / "kafka" / "libs").symlink_to(Path(settings.paths.state_root) / "kafka" / "libs")
    extra = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    return load_settings({**os.environ, **extra, "EARSHOT_STATE_ROOT": str(state)}), extra


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_the_stream_rides_out_a_kill_9_of_the_broker_and_applies_every_acknowledged_event_once(
    stack, settings, tmp_path, repo_root
):
    """kill -9 of the Kafka broker under a running stream, 15 s down, started again on its data: the stream
    stays up, and every acknowledged event, before and after, is applied exactly once. The broker is the
    test's own, so the test runs wherever the project's broker can start (CI's fresh clone included)."""
    from services import stack as local_stack
    from services.health import kafka_service
    from services.process import started_pid

    broker, extra = private_broker(settings, tmp_path)
    local_stack.start_kafka(broker)
    pid = started_pid(kafka_service(broker))
    assert pid is not None, "the test's broker was started by the project's stack"
    env, mine, ids = stream_case(tmp_path, "broker", **extra)
    ledger: Counter = Counter()
    client = MongoClient(mine.mongo.uri, serverSelectionTimeoutMS=2000)
    log = tmp_path / "stream.log"

    stream = start_stream(repo_root, env, log)
    try:
        send_acknowledged(mine, ids, ledger, 100, prefix="k")
        wait_for(lambda: applied_by_listener(client, mine.mongo.database) == ledger, timeout=180,
                 what=f"the first events (log: {log})")  # fmt: skip
        os.kill(pid, signal.SIGKILL)
        time.sleep(15)
        assert stream.poll() is None, f"the stream stopped while the broker was down (log: {log})"
        local_stack.start_kafka(broker)
        back = time.monotonic()
        send_acknowledged(mine, ids, ledger, 100, prefix="k")
        wait_for(lambda: applied_by_listener(client, mine.mongo.database) == ledger, timeout=120,
                 what=f"the events after the broker came back (log: {log})")  # fmt: skip
        assert stream.poll() is None and time.monotonic() - back < 120
    finally:
        if stream.poll() is None:
            os.killpg(stream.pid, signal.SIGTERM)
            stream.wait(timeout=90)
        again = started_pid(kafka_service(broker))
        if again is not None:
            os.kill(again, signal.SIGTERM)
        client.drop_database(mine.mongo.database)
        client.close()
