"""The recommender stream on the real broker, FerretDB and Spark, over a synthetic genre-structured index."""

from __future__ import annotations

import base64
import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conf.settings import Settings
from connectors import mongo_io
from events.contract import EVENT_TYPES
from events.producer import ListenProducer, new_event
from index.reader import Index
from recommend.items import items_of
from tests.integration.streaming import (
    fuzzed_messages,
    malformed_messages,
    publish_synthetic_index,
    stream_settings,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.spark]


@pytest.fixture(scope="module")
def live(stack, spark, tmp_path_factory):
    """A running recommender (and archive) over its own topic, database and synthetic index."""
    from spark_jobs import stream

    root = tmp_path_factory.mktemp("stream")
    settings = stream_settings(root, "stream")
    publish_synthetic_index(settings)
    queries, sink = stream.start(spark, settings)
    client = mongo_io.connect(settings)
    db = mongo_io.database(client, settings)
    producer = ListenProducer(settings.kafka.bootstrap_servers, topic=settings.kafka.listens_topic)
    try:
        yield settings, db, producer, Index.open(settings.paths.index_root)
    finally:
        producer.close()
        stream.stop(spark, queries, sink)
        client.drop_database(settings.mongo.database)
        client.close()


def rec_doc(db, user: str, *, events: int) -> dict:
    """The user's recommendations once ``events`` of theirs have been applied."""
    return wait_for(
        lambda: (d := db["recommendations"].find_one({"_id": user})) and d["events_total"] >= events and d,
        what=f"recommendations of {user} after {events} events",
    )


def genre_share(doc: dict, genre: str, k: int = 10) -> float:
    items = items_of(doc["items"])[:k]
    return sum(i["genre"] == genre for i in items) / max(1, len(items))


def send(producer: ListenProducer, user: str, tracks: list[int], *types: str) -> int:
    n = 0
    for t in tracks:
        for kind in types:
            producer.send(new_event(user_id=user, track_id=int(t), type=kind))
            n += 1
    producer.flush()
    return n


def test_a_listener_who_likes_one_genre_gets_mostly_that_genre(live):
    settings, db, producer, index = live
    jazz = index.catalogue.ids_of_genre("Jazz")
    n = send(producer, "liker", jazz[:6], "play", "complete", "like")
    doc = rec_doc(db, "liker", events=n)
    assert doc["source"] == "taste"
    items = items_of(doc["items"])
    assert len(items) == settings.stream.recommendations
    assert genre_share(doc, "Jazz") >= 0.7, [i["genre"] for i in items[:10]]
    assert not {i["track_id"] for i in items} & set(jazz[:6]), "tracks already heard are left out"
    assert all(i["reason"] for i in items)
    assert doc["index_version"] == index.version
    assert doc["written_at"].timestamp() * 1000 >= doc["trigger_event_ms"] - 5  # FerretDB keeps milliseconds
    profile = doc["profile"]
    assert profile["counts"]["like"] == 6 and profile["top_genres"][0] == "Jazz"


def test_a_listener_who_skips_a_genre_sees_less_of_it(live):
    _, db, producer, index = live
    rock, folk = index.catalogue.ids_of_genre("Rock"), index.catalogue.ids_of_genre("Folk")
    n = 0
    for r, f in zip(rock[:6], folk[:6], strict=True):
        n += send(producer, "skipper", [r, f], "play", "complete")
    before = genre_share(rec_doc(db, "skipper", events=n), "Folk", k=20)
    n += send(producer, "skipper", folk[6:16], "play", "skip")
    after_doc = rec_doc(db, "skipper", events=n)
    after = genre_share(after_doc, "Folk", k=20)
    assert before >= 0.1, ("both genres were liked at first", before)
    assert after < before / 2, (before, after)
    profile = after_doc["profile"]
    assert profile["skips_by_genre"] == {"Folk": 10}
    assert profile["skip_rate"] == pytest.approx(10 / 22, abs=1e-3)


def test_one_like_and_no_history_gets_a_radio_around_that_track(live):
    _, db, producer, index = live
    seed = index.catalogue.ids_of_genre("Classical")[3]
    send(producer, "newcomer", [seed], "like")
    doc = rec_doc(db, "newcomer", events=1)
    assert doc["source"] == "radio"
    items = items_of(doc["items"])
    assert items and items[0]["reason"].startswith("song radio from")
    assert seed not in {i["track_id"] for i in items}
    assert genre_share(doc, "Classical") >= 0.7


def dead_letters(settings: Settings):
    """A consumer of the dead-letter topic from its start, ending its iteration after 2 s without a message."""
    from kafka import KafkaConsumer

    return KafkaConsumer(
        settings.kafka.dlq_topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
        fetch_max_bytes=8 * 1024 * 1024,
    )


def test_every_kind_of_malformed_message_goes_to_the_dead_letter_topic_and_the_stream_goes_on(live):
    settings, db, producer, index = live
    pop = index.catalogue.ids_of_genre("Pop")
    bad = malformed_messages(int(pop[0]))
    for i, value in enumerate(bad.values()):
        producer.send_raw(None if i % 2 else "bad", value)  # half of them with a null key
        send(producer, f"between-{i}", pop[i % len(pop) : i % len(pop) + 1], "like")  # valid events mixed in
    null_key = new_event(user_id="no-key", track_id=int(pop[1]), type="like")
    producer.send_raw(None, json.dumps(null_key).encode())  # a valid event without a key is still applied
    producer.flush()
    consumer = dead_letters(settings)
    letters: list[dict] = []
    deadline = time.monotonic() + 120
    try:
        while len(letters) < len(bad) and time.monotonic() < deadline:
            letters += [{**json.loads(m.value), "key": m.key.decode(), "size": len(m.value)} for m in consumer]
    finally:
        consumer.close()
    reasons = [letter["reason"] for letter in letters]
    assert len(letters) == len(bad), reasons
    for expected in bad:
        assert any(expected in r for r in reasons), (expected, reasons)
    for letter in letters:
        assert letter["key"] == f"{letter['source']['partition']}:{letter['source']['offset']}"
        assert letter["size"] < 64 * 1024, "a dead letter stays far below the producer's limit"
    big = next(letter for letter in letters if "the limit is" in letter["reason"])
    assert big["raw_truncated"] and big["raw_bytes"] > 1_000_000
    utf8 = next(letter for letter in letters if letter["reason"].startswith("not UTF-8"))
    assert base64.b64decode(utf8["raw_base64"]) == bad["not UTF-8: invalid byte 0xff"]
    for i in range(len(bad)):  # the stream kept going: every listener in between got recommendations
        rec_doc(db, f"between-{i}", events=1)
    rec_doc(db, "no-key", events=1)


def test_a_duplicate_event_is_applied_once(live):
    _, db, producer, index = live
    event = new_event(user_id="twice", track_id=int(index.catalogue.ids_of_genre("Rock")[0]), type="like")
    producer.send(event)
    producer.send(event)
    producer.send(new_event(user_id="twice", track_id=int(index.catalogue.ids_of_genre("Rock")[1]), type="like"))
    producer.flush()
    rec_doc(db, "twice", events=2)
    time.sleep(2)
    assert db["recommendations"].find_one({"_id": "twice"})["profile"]["counts"]["like"] == 2
    assert sum(b.get("duplicates", 0) for b in db["stream_batches"].find()) >= 1


def test_batches_are_recorded_for_the_dashboard(live):
    _, db, _, _ = live
    batches = wait_for(lambda: [b for b in db["stream_batches"].find() if "duration_ms" in b], what="batch progress")
    b = batches[-1]
    assert b["input_rows"] == b["applied"] + b["dlq"] + b["duplicates"]
    assert "p50" in b["latency_ms"] and b["offsets_behind"]


def test_a_new_index_version_is_picked_up_without_a_restart(live):
    settings, db, producer, index = live
    newer = publish_synthetic_index(settings, seed=5, version="v99990101T000000000000Z")
    time.sleep(3)  # longer than the stream's index recheck
    send(producer, "late", index.catalogue.ids_of_genre("Rock")[:2], "like")
    doc = rec_doc(db, "late", events=2)
    assert doc["index_version"] == newer.name


def test_valid_events_are_archived_in_delta_once(live, spark):
    settings, _, _, _ = live
    from connectors import delta_io

    location = settings.lake_table("events")

    def liker_rows():
        if not delta_io.table_exists(spark, location):
            return None
        rows = delta_io.read_table(spark, location).filter("user_id = 'liker'").count()
        return rows == 18 and rows

    wait_for(liker_rows, what="the events archive")
    twice = lambda: delta_io.read_table(spark, location).filter("user_id = 'twice'").count()  # noqa: E731
    wait_for(lambda: twice() >= 2, what="the duplicate's listener in the archive")
    time.sleep(3)  # another archive batch: the duplicate stays out
    assert twice() == 2
    assert delta_io.read_table(spark, location).filter("user_id = 'bad'").count() == 0


def test_thousands_of_fuzzed_messages_among_valid_ones_each_get_a_dead_letter_or_are_applied_once(live):
    """3,000 broken messages of nine kinds mixed with 600 valid events (and repeats of 60) from 60 listeners:
    every broken one has a dead letter with a reason, every valid one is applied exactly once."""
    settings, db, producer, index = live
    rng = random.Random(2026)
    ids = sorted(index.catalogue.tracks)
    users = [f"fuzz-{i:02d}" for i in range(60)]
    valid = [new_event(user_id=rng.choice(users), track_id=rng.choice(ids), type=rng.choice(EVENT_TYPES))
             for _ in range(600)]  # fmt: skip
    bad = fuzzed_messages(rng, valid, 3000)
    bad_offsets: set[tuple[int, int]] = set()
    futures = []
    stream = [("bad", b) for b in bad] + [("valid", v) for v in valid] + [("repeat", v) for v in valid[::10]]
    rng.shuffle(stream)
    for what, item in stream:
        if what == "bad":
            futures.append(producer.send_raw(*item))
        else:
            producer.send(item)
    producer.flush()
    for f in futures:
        meta = f.get(timeout=30)
        bad_offsets.add((meta.partition, meta.offset))
    expected = {u: sum(e["user_id"] == u for e in valid) for u in users}
    wait_for(
        lambda: all(
            (d := db["recommendations"].find_one({"_id": u}, {"events_total": 1})) and d["events_total"] >= n
            for u, n in expected.items()
            if n
        ),
        timeout=180,
        what="the valid listeners' events",
    )
    consumer = dead_letters(settings)
    lettered: dict[tuple[int, int], str] = {}
    deadline = time.monotonic() + 120
    try:
        while not bad_offsets <= set(lettered) and time.monotonic() < deadline:
            for m in consumer:
                letter = json.loads(m.value)
                lettered[(letter["source"]["partition"], letter["source"]["offset"])] = letter["reason"]
    finally:
        consumer.close()
    missing = bad_offsets - set(lettered)
    assert not missing, f"{len(missing)} of {len(bad_offsets)} broken messages have no dead letter"
    assert all(lettered[o] for o in bad_offsets), "every dead letter says why"
    reasons = {lettered[o].split(":")[0].split(" (")[0][:40] for o in bad_offsets}
    assert len(reasons) >= 8, f"many kinds of breakage, each named: {sorted(reasons)}"
    time.sleep(2)  # nothing more arrives: repeats were not applied again
    applied = {d["_id"]: d["events_total"] for d in db["recommendations"].find({"_id": {"$in": users}})}
    assert applied == {u: n for u, n in expected.items() if n}, "each valid event applied exactly once"


def test_a_track_catalogued_after_the_index_was_built_is_applied_archived_and_placed_by_the_next_version(live, spark):
    """ingest has catalogued a track (Mongo ``tracks``) that no index version holds yet: its plays count, reach
    Delta ``events``, and once build-index publishes a version with it, it moves the listener's taste."""
    import numpy as np
    import pandas as pd

    from connectors import delta_io
    from index.local import build_version
    from index.synthetic import COLUMNS, synthetic_catalogue

    settings, db, producer, index = live
    new = 10**12 + 7
    mongo_io.set_fields_many(db, "tracks", [{"_id": new, "title": "New song", "genre_top": "Folk"}])
    folk = index.catalogue.ids_of_genre("Folk")
    plays = ((new, "play"), (new, "like"), (folk[0], "like"), (new, "complete"))
    for e in [new_event(user_id="catalogued-late", track_id=t, type=k) for t, k in plays]:
        producer.send(e)
    producer.flush()
    doc = rec_doc(db, "catalogued-late", events=4)
    assert doc["profile"]["counts"] == {**doc["profile"]["counts"], "like": 2, "play": 1, "complete": 1}, doc
    assert doc["profile"]["unplaced"] == 3, doc
    location = settings.lake_table("events")
    wait_for(lambda: delta_io.table_exists(spark, location)
             and delta_io.read_table(spark, location).filter("user_id = 'catalogued-late'").count() == 4,
             what="the new track's events in Delta events")  # fmt: skip

    ids, raw, frame = synthetic_catalogue(per_genre=80, artists_per_genre=8, seed=0)
    vector = raw[ids == folk[1]][0]
    catalogue = pd.concat([frame, pd.DataFrame([{"track_id": new, "title": "New song", "artist_name": "someone",
                                                 "genre_top": "Folk"}])])  # fmt: skip
    build_version(Path(settings.paths.index_root), np.append(ids, new), np.vstack([raw, vector]), COLUMNS,
                  feature_version="fma-v1", catalogue=catalogue, shards=2, pca_components=32,
                  version="v99991231T000000000000Z")  # fmt: skip
    time.sleep(3)  # longer than the stream's index recheck
    producer.send(new_event(user_id="catalogued-late", track_id=folk[2], type="play"))
    producer.flush()
    doc = rec_doc(db, "catalogued-late", events=5)
    assert doc["index_version"] == "v99991231T000000000000Z" and doc["profile"]["unplaced"] == 0


def test_the_archive_accounts_for_every_message_it_reads(live, spark):
    """After every kind of event, duplicate and malformed message above: each archive batch's input is
    archived + rejected + duplicates, and what it says it archived is what Delta holds."""
    from connectors import delta_io

    settings, db, _, _ = live
    location = settings.lake_table("events")
    wait_for(lambda: delta_io.table_exists(spark, location), what="the events archive")
    # What import-history MERGEd itself is not the archive's (its history messages are counted as such).
    read = delta_io.read_table(spark, location).filter("client IS NULL OR client NOT LIKE 'import:%'").count
    wait_for(lambda: sum(b["archived"] for b in db["stream_batches"].find(mongo_io.ARCHIVE_BATCHES)) == read(),
             what="the archive's accounting to catch up")  # fmt: skip
    batches = list(db["stream_batches"].find(mongo_io.ARCHIVE_BATCHES))
    assert batches and all(
        b["input_rows"] == b["archived"] + b["rejected"] + b["duplicates"] + b.get("histories", 0) for b in batches
    )
    assert sum(b["rejected"] for b in batches) >= 3000 and sum(b["duplicates"] for b in batches) >= 60
    reasons = {r["reason"] for b in batches for r in b["rejected_by_reason"]}
    assert any("not in the catalogue" in r for r in reasons) and len(reasons) >= 8


def test_an_imported_history_warms_a_new_listener_in_the_running_stream_once(live, spark, tmp_path, capsys):
    """import-history against the running stream: a Last.fm CSV of a year-old Jazz habit (and listens the
    library lacks) becomes the new listener's taste without a restart; importing it again, or the same
    history messages sent again (an import retried after sending), changes nothing."""
    from connectors import delta_io
    from history.events import history_messages
    from index.synthetic import synthetic_catalogue
    from spark_jobs import import_history
    from tests.integration.jobs import run_job

    settings, db, producer, index = live
    _, _, frame = synthetic_catalogue(per_genre=80, artists_per_genre=8, seed=0)
    mongo_io.set_fields_many(db, "tracks", [{"_id": int(r.track_id), "title": r.title, "artist_name": r.artist_name,
                                             "genre_top": r.genre_top} for r in frame.itertuples()])  # fmt: skip
    jazz = frame[frame["genre_top"] == "Jazz"].head(40)
    t0 = int(time.time()) - 365 * 86400
    rows = [f"{t0 + 600 * n},x,{r.artist_name.upper()},,,,{r.title},\n" for n, r in enumerate(jazz.itertuples())]
    rows += [f"{t0 + 30_000 + n},x,Nobody Here,,,,Lost {n % 3},\n" for n in range(9)]
    export = tmp_path / "scrobbles.csv"
    export.write_text("uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n" + "".join(rows))

    assert run_job(import_history, settings, "--user", "importer", str(export)) == 0
    out = capsys.readouterr().out
    assert "matched 40 (0 by mbid, 0 by isrc, 40 by name), 9 not in this library" in out, out
    assert "40 listens sent to the live taste in 1 history messages" in out, out
    doc = rec_doc(db, "importer", events=40)
    assert doc["trigger_type"] == "history" and doc["profile"]["counts"]["complete"] == 40
    assert doc["profile"]["top_genres"][0] == "Jazz" and genre_share(doc, "Jazz") >= 0.7, doc["items"]
    assert not {i["track_id"] for i in items_of(doc["items"])} & set(jazz["track_id"]), "heard tracks left out"
    imported = delta_io.read_table(spark, settings.lake_table("events")).filter("user_id = 'importer'")
    assert imported.count() == 40 and imported.filter("client = 'import:lastfm-csv'").count() == 40

    assert run_job(import_history, settings, "--user", "importer", str(export)) == 0
    assert "0 listens sent to the live taste in 0 history messages" in capsys.readouterr().out
    from pyspark.sql import functions as F

    rows = imported.select("event_id", "track_id", "type", F.unix_millis("ts").alias("ts_ms")).collect()
    events = [r.asDict() for r in rows]
    for message in history_messages("importer", events, datetime.now(UTC)):
        producer.send_history(message)  # what an import that failed after sending sends again when rerun
    send(producer, "importer", [int(index.catalogue.ids_of_genre("Jazz")[60])], "play")
    doc = rec_doc(db, "importer", events=41)
    time.sleep(2)
    assert db["recommendations"].find_one({"_id": "importer"})["events_total"] == 41
    assert imported.filter("client LIKE 'import:%'").count() == 40
