"""stream: listening events from Kafka -> per-listener taste in Spark's state store -> recommendations in Mongo.

One Structured Streaming query, ``recommender``:

1. reads ``kafka.listens_topic`` and groups the messages by the ``user_id`` in
   their JSON (messages without one share the empty key);
2. ``transformWithStateInPandas`` runs :class:`TasteProcessor` per listener: each
   message is checked against the event contract (``events.contract``) and the
   catalogue of the current index version; a duplicate ``event_id`` (kept for a
   window per listener) is dropped; valid events fold into the listener's
   :class:`index.taste.Taste` (RocksDB state store); then the index is queried
   once per listener touched;
3. ``foreachBatch`` (:class:`BatchSink`) writes, in this order, Mongo
   ``recommendations`` and ``profiles`` (upserts by user id), the dead-letter
   topic (JSON with the reason, keyed by source partition:offset), and one
   document per micro-batch in Mongo ``stream_batches`` (counts, latencies,
   and Spark's progress: rates, durations, offsets behind the latest).

A second query, ``events-archive``, reads the same topic on a slower trigger
(``stream.archive_trigger_seconds``) and MERGEs every valid event, once per
``event_id``, into the Delta table ``events``: the history for analytics stays
off the path that recommendations take (a Delta commit costs seconds here).

The checkpoint (``paths.checkpoint_root``/recommender) holds the offsets and
state, so a restart, even after kill -9, replays the unfinished batch from the
last committed state: no event is lost or applied twice, and the sinks are
idempotent for a replayed batch (dead letters are at-least-once: dedup them by
their key). A newly published index version is picked up within
:data:`INDEX_RECHECK_S` seconds, without a restart.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle, StreamingQueryListener

from conf.settings import Settings
from events.contract import InvalidEvent, dead_letter_raw, decode_message, parse_ts
from index import store
from index.manifest import IndexError_
from index.query import SimilarityIndex
from index.recommend import recommend
from index.taste import Taste
from spark_jobs import delta_io, kafka_io, mongo_io
from spark_jobs.errors import JobInputError
from spark_jobs.poison import Quarantine, pending_batch
from spark_jobs.services import require_kafka, require_mongo
from spark_jobs.session import build_spark

log = logging.getLogger("earshot.stream")

QUERY_NAME = "recommender"
INDEX_RECHECK_S = 2.0

OUTPUT_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType()),  # dlq | stats | rec | profile
        T.StructField("user_id", T.StringType()),
        T.StructField("event_id", T.StringType()),
        T.StructField("track_id", T.LongType()),
        T.StructField("type", T.StringType()),
        T.StructField("ts_ms", T.LongType()),
        T.StructField("position_ms", T.LongType()),
        T.StructField("session_id", T.StringType()),
        T.StructField("client", T.StringType()),
        T.StructField("genre", T.StringType()),
        T.StructField("reason", T.StringType()),
        T.StructField("raw", T.BinaryType()),
        T.StructField("kafka_partition", T.IntegerType()),
        T.StructField("kafka_offset", T.LongType()),
        T.StructField("kafka_ts_ms", T.LongType()),
        T.StructField("doc", T.StringType()),
    ]
)
OUTPUT_COLUMNS = [f.name for f in OUTPUT_SCHEMA.fields]
# Explicit pandas dtypes: an all-missing column must still convert to its Arrow type.
OUTPUT_DTYPES = {
    f.name: {T.LongType(): "Int64", T.IntegerType(): "Int32"}.get(f.dataType, "object") for f in OUTPUT_SCHEMA.fields
}
EVENTS_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("user_id", T.StringType()),
        T.StructField("track_id", T.LongType()),
        T.StructField("type", T.StringType()),
        T.StructField("ts", T.TimestampType()),
        T.StructField("position_ms", T.LongType()),
        T.StructField("session_id", T.StringType()),
        T.StructField("client", T.StringType()),
        T.StructField("genre", T.StringType()),
        T.StructField("kafka_partition", T.IntegerType()),
        T.StructField("kafka_offset", T.LongType()),
        T.StructField("batch_id", T.LongType()),
    ]
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--starting-offsets",
        choices=("earliest", "latest"),
        default="earliest",
        help="where a new checkpoint starts reading (default: earliest, so nothing sent before is lost)",
    )
    parser.add_argument("--run-seconds", type=float, help="stop after this long (default: run until stopped)")
    parser.add_argument(
        "--no-archive", action="store_true", help="do not run the Delta `events` archive query beside the recommender"
    )
    parser.add_argument(
        "--skip-poison",
        action="store_true",
        help="send the messages of the batch that failed last (started, never committed) to the dead-letter "
        "topic instead of applying them; for a batch that fails on every restart",
    )


# ---------------------------------------------------------------- the index, cached per Python worker

_cache: dict[str, Any] = {"root": None, "folder": None, "index": None, "checked": 0.0}
_cache_lock = threading.Lock()


def current_index(root: str) -> SimilarityIndex | None:
    """The published version under ``root``, re-resolved at most every INDEX_RECHECK_S seconds."""
    now = time.monotonic()
    with _cache_lock:
        if _cache["root"] == root and now - _cache["checked"] < INDEX_RECHECK_S:
            return _cache["index"]
        _cache["root"], _cache["checked"] = root, now
        try:
            folder = store.resolve(Path(root), None)
        except IndexError_:
            return _cache["index"]  # keep serving the last good version
        if folder != _cache["folder"]:
            try:
                _cache["index"], _cache["folder"] = SimilarityIndex(folder), folder
            except IndexError_ as exc:
                log.warning("index %s not usable, keeping the previous one: %s", folder, exc)
        return _cache["index"]


# ---------------------------------------------------------------- per-listener logic (pure)


def fold_events(
    taste: Taste | None,
    rows: pd.DataFrame,
    index: SimilarityIndex | None,
    *,
    user_key: str,
    now: datetime,
    max_future_s: float,
    max_age_s: float,
    half_life_ms: float,
    k: int,
    quarantine: Quarantine | None = None,
) -> tuple[Taste | None, list[dict]]:
    """Apply one listener's messages (``value`` bytes, ``kafka_partition``, ``kafka_offset``, ``kafka_ts_ms``).

    Returns the new taste (None when nothing valid arrived for a listener without
    one) and the output rows: one ``dlq`` row per rejected message; a ``stats``
    row (events applied, their times, duplicates dropped) when any message was
    valid; then a ``rec`` and a ``profile`` row if any event was applied.
    """
    out: list[dict] = []
    applied: list[dict] = []
    duplicates = 0
    catalogue = index.catalogue if index is not None else None
    order = np.lexsort((rows["kafka_offset"].to_numpy(), rows["kafka_partition"].to_numpy()))
    columns = [rows[c].to_numpy()[order].tolist() for c in ("value", "kafka_partition", "kafka_offset", "kafka_ts_ms")]
    for value, partition, offset, kafka_ts in zip(*columns, strict=True):
        source = {"kafka_partition": partition, "kafka_offset": offset, "kafka_ts_ms": kafka_ts}
        try:
            if quarantine is not None and quarantine.holds(partition, offset):
                raise InvalidEvent(quarantine.reason)
            event = decode_message(value, now=now, max_future_s=max_future_s, max_age_s=max_age_s)
            if event["user_id"] != user_key:
                raise InvalidEvent("user_id is not a plain JSON string")
            if catalogue is None:
                raise InvalidEvent("no index is published yet, so no track can be checked")
            if event["track_id"] not in catalogue:
                raise InvalidEvent(f"track_id {event['track_id']} is not in the catalogue")
        except InvalidEvent as exc:
            out.append({"kind": "dlq", "user_id": user_key or None, "reason": str(exc), "raw": value, **source})
            continue
        except Exception as exc:  # noqa: BLE001 - no message may stop the stream: it goes to the DLQ, said why
            log.exception("message at partition %s offset %s could not be processed", partition, offset)
            reason = f"could not be processed: {type(exc).__name__}: {exc}"[:500]
            out.append({"kind": "dlq", "user_id": user_key or None, "reason": reason, "raw": value, **source})
            continue
        taste = taste or Taste()
        ts_ms = int(parse_ts(event["ts"]).timestamp() * 1000)
        if taste.is_duplicate(event["event_id"]):
            duplicates += 1
            continue
        track_id = event["track_id"]
        genre = catalogue.get(track_id).genre
        vector = index.raw_of(track_id) if track_id in index else None
        taste.apply(event["type"], track_id, ts_ms, vector, genre=genre, half_life_ms=half_life_ms)
        taste.remember(event["event_id"], ts_ms)
        applied.append({"event_id": event["event_id"], "type": event["type"], "track_id": track_id, "ts_ms": ts_ms,
                        "kafka_offset": offset})  # fmt: skip
    if applied or duplicates:
        stats = {"applied": len(applied), "duplicates": duplicates, "ts_ms": [a["ts_ms"] for a in applied]}
        out.append({"kind": "stats", "user_id": user_key, "doc": json.dumps(stats)})
    if not applied:
        return taste, out
    taste.forget_old_ids()
    last = max(applied, key=lambda a: (a["ts_ms"], a["kafka_offset"]))
    rec = recommend(index, taste, k=k)
    doc = {
        "items": rec.items,
        "source": rec.source,
        "index_version": index.version,
        "trigger_event_id": last["event_id"],
        "trigger_type": last["type"],
        "trigger_track_id": last["track_id"],
        "trigger_event_ms": last["ts_ms"],
        "events_in_batch": len(applied),
        "events_total": taste.events,
    }
    out.append({"kind": "rec", "user_id": user_key, "doc": json.dumps(doc)})
    out.append({"kind": "profile", "user_id": user_key, "doc": json.dumps(taste.profile())})
    return taste, out


def output_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.array([r.get(c) for r in rows], dtype=OUTPUT_DTYPES[c]) for c in OUTPUT_COLUMNS})


# ---------------------------------------------------------------- the stateful processor


class TasteProcessor(StatefulProcessor):
    """transformWithStateInPandas processor: one ``Taste`` blob per listener in the state store."""

    def __init__(
        self,
        *,
        index_root: str,
        max_future_s: float,
        max_age_s: float,
        half_life_ms: float,
        k: int,
        quarantine: Quarantine | None = None,
    ):
        self.index_root = index_root
        self.max_future_s = max_future_s
        self.max_age_s = max_age_s
        self.quarantine = quarantine
        self.half_life_ms = half_life_ms
        self.k = k

    def init(self, handle: StatefulProcessorHandle) -> None:
        schema = T.StructType([T.StructField("blob", T.BinaryType())])
        self.state = handle.getValueState("taste", schema)

    def handleInputRows(self, key, rows, timerValues) -> Iterator[pd.DataFrame]:  # noqa: N802 - Spark's API
        (user_key,) = key
        frame = pd.concat(list(rows), ignore_index=True)
        taste = None
        if user_key and self.state.exists():
            taste = Taste.from_bytes(bytes(self.state.get()[0]))
        index = current_index(self.index_root)
        taste, out = fold_events(
            taste,
            frame,
            index,
            user_key=user_key,
            now=datetime.now(UTC),
            max_future_s=self.max_future_s,
            max_age_s=self.max_age_s,
            half_life_ms=self.half_life_ms,
            k=self.k,
            quarantine=self.quarantine,
        )
        if taste is not None and user_key and any(o["kind"] == "rec" for o in out):
            self.state.update((taste.to_bytes(),))
        yield output_frame(out)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- the query


def listen_messages(spark: SparkSession, settings: Settings, *, starting_offsets: str, max_offsets: int) -> DataFrame:
    """The ``listens`` topic as (user_key, value, kafka_partition, kafka_offset, kafka_ts_ms).

    ``value`` stays bytes: any byte sequence can arrive, and it is decoded and
    checked in Python (``events.contract.decode_message``). ``user_key``, the
    grouping key, is the JSON ``user_id`` only when the value is valid UTF-8 and
    the extracted id is too, else the empty key (whose messages are rejected).
    """
    source = kafka_io.read_stream(
        spark,
        settings,
        topic=settings.kafka.listens_topic,
        starting_offsets=starting_offsets,
        max_offsets_per_trigger=max_offsets,
    )
    text = F.col("value").cast("string")
    user_id = F.when(F.is_valid_utf8(text), F.get_json_object(text, "$.user_id"))
    return source.select(
        F.when(F.is_valid_utf8(user_id), user_id).otherwise(F.lit("")).alias("user_key"),
        F.col("value").alias("value"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        (F.unix_micros(F.col("timestamp")) / 1000).cast("long").alias("kafka_ts_ms"),
    )


def build_query(
    spark: SparkSession,
    settings: Settings,
    *,
    starting_offsets: str = "earliest",
    quarantine: Quarantine | None = None,
):
    """The streaming DataFrame of processor output (not started)."""
    messages = listen_messages(
        spark, settings, starting_offsets=starting_offsets, max_offsets=settings.stream.max_offsets_per_trigger
    )
    processor = TasteProcessor(
        index_root=str(settings.paths.index_root),
        max_future_s=float(settings.stream.max_future_seconds),
        max_age_s=settings.stream.max_age_days * 86400.0,
        half_life_ms=settings.stream.half_life_hours * 3600 * 1000,
        k=settings.stream.recommendations,
        quarantine=quarantine,
    )
    return messages.groupBy("user_key").transformWithStateInPandas(
        statefulProcessor=processor, outputStructType=OUTPUT_SCHEMA, outputMode="Append", timeMode="None"
    )


class BatchSink:
    """foreachBatch: Mongo first (freshness), then the dead letters, then the batch's metrics."""

    def __init__(self, settings: Settings, app_id: str, progress: ProgressRecorder | None = None):
        self.settings = settings
        self.checkpoint = settings.checkpoint(QUERY_NAME)
        self.app_id = app_id
        self.progress = progress
        self._client = None
        self._producer = None

    def batch_key(self, batch_id: int) -> str:
        return f"{self.app_id}:{batch_id:010d}"

    def store_progress(self) -> None:
        """Add Spark's progress of the batches finished so far to their documents."""
        if self.progress is None:
            return
        docs = [{"_id": self.batch_key(b), **fields} for b, fields in self.progress.take().items()]
        mongo_io.set_fields_many(self.db, "stream_batches", docs)

    @property
    def db(self):
        if self._client is None:
            self._client = mongo_io.connect(self.settings)
        return mongo_io.database(self._client, self.settings)

    def producer(self):
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(
                bootstrap_servers=self.settings.kafka.bootstrap_servers, acks="all", enable_idempotence=True
            )
        return self._producer

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            self._write(batch, batch_id)
        except Exception:
            # Spark shortens a foreachBatch error to one line: keep the whole story in the log.
            where = f"batch {batch_id}"
            try:
                where = (pending_batch(self.checkpoint, self.settings.kafka.listens_topic) or where).describe()
            except Exception:  # noqa: BLE001 - the offsets are a hint; the failure itself must be reported
                pass
            log.exception(
                "%s could not be processed; the query stops and replays it on restart. If it fails the same way "
                "on every restart, `./spark-submit.sh stream --skip-poison` sends its messages to %s and goes on",
                where,
                self.settings.kafka.dlq_topic,
            )
            raise

    def _write(self, batch: DataFrame, batch_id: int) -> None:
        started = time.time()
        out = batch.toPandas()
        collected = time.time()
        kinds = out["kind"]
        recs, profiles, dlq = out[kinds == "rec"], out[kinds == "profile"], out[kinds == "dlq"]
        stats = [json.loads(d) for d in out.loc[kinds == "stats", "doc"]]
        applied = sum(st["applied"] for st in stats)
        duplicates = sum(st["duplicates"] for st in stats)
        event_ms = np.asarray([t for st in stats for t in st["ts_ms"]], dtype=np.float64)
        now = datetime.now(UTC)
        mongo_io.upsert_many(
            self.db,
            "recommendations",
            (
                {"_id": r.user_id, **json.loads(r.doc), "written_at": now, "batch_id": batch_id}
                for r in recs.itertuples()
            ),
        )
        mongo_io.upsert_many(
            self.db,
            "profiles",
            (
                {"_id": r.user_id, **json.loads(r.doc), "updated_at": now, "batch_id": batch_id}
                for r in profiles.itertuples()
            ),
        )
        written_ms = time.time() * 1000
        latencies = written_ms - event_ms
        for r in dlq.itertuples():
            letter = {
                "reason": r.reason,
                **dead_letter_raw(r.raw),  # bounded: a 1 MB message must not make a letter over Kafka's limit
                "user_key": r.user_id,
                "source": {
                    "topic": self.settings.kafka.listens_topic,
                    "partition": int(r.kafka_partition),  # a float column in pandas: other kinds leave it empty
                    "offset": int(r.kafka_offset),
                    "timestamp_ms": int(r.kafka_ts_ms),
                },
                "detected_at": now.isoformat(),
            }
            self.producer().send(
                self.settings.kafka.dlq_topic,
                key=f"{int(r.kafka_partition)}:{int(r.kafka_offset)}".encode(),
                value=json.dumps(letter).encode("utf-8"),
            )
        if len(dlq):
            self.producer().flush()
        dlq_done = time.time()
        metrics = {
            "_id": self.batch_key(batch_id),
            "query": self.app_id,
            "batch_id": batch_id,
            "at": now,
            "input_rows": applied + len(dlq) + duplicates,
            "applied": applied,
            "dlq": len(dlq),
            "duplicates": duplicates,
            "users": len(recs),
            "state_and_query_ms": round((collected - started) * 1000, 1),
            "mongo_ms": round((written_ms / 1000 - collected) * 1000, 1),
            "dlq_ms": round((dlq_done - written_ms / 1000) * 1000, 1),
            "total_ms": round((dlq_done - started) * 1000, 1),
            "latency_ms": _summary(latencies),
            "latency_sample_ms": [round(float(x), 1) for x in _sample(latencies, 2000)],
        }
        mongo_io.set_fields_many(self.db, "stream_batches", [metrics])
        self.store_progress()

    def close(self) -> None:
        try:
            self.store_progress()
        except Exception as exc:  # noqa: BLE001 - closing must not hide why the query stopped
            log.warning("could not store the last progress: %s", exc)
        if self._producer is not None:
            self._producer.close()
        if self._client is not None:
            self._client.close()


def _summary(values: np.ndarray) -> dict:
    if not len(values):
        return {}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "p50": round(float(p50), 1),
        "p95": round(float(p95), 1),
        "p99": round(float(p99), 1),
        "max": round(float(values.max()), 1),
    }


def _sample(values: np.ndarray, n: int) -> np.ndarray:
    if len(values) <= n:
        return values
    return np.random.default_rng(0).choice(values, n, replace=False)


class ProgressRecorder(StreamingQueryListener):
    """Keeps Spark's own progress per batch (rates, durations, offsets behind the latest) for the sink to store.

    The sink is the only writer of ``stream_batches``: FerretDB's SQLite backend can
    stall when two connections write one new collection at once.
    """

    def __init__(self):
        self._pending: dict[int, dict] = {}
        self._lock = threading.Lock()

    def onQueryStarted(self, event) -> None:  # noqa: N802 - Spark's API
        pass

    def onQueryIdle(self, event) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        pass

    def onQueryProgress(self, event) -> None:  # noqa: N802
        p = event.progress
        if p.name != QUERY_NAME or p.numInputRows == 0:
            return
        source = p.sources[0] if p.sources else None
        behind = {}
        if source is not None and source.metrics:
            behind = {k: _number(v) for k, v in source.metrics.items() if "OffsetsBehindLatest" in k}
        with self._lock:
            self._pending[p.batchId] = {
                "num_input_rows": p.numInputRows,
                "input_rows_per_s": round(float(p.inputRowsPerSecond or 0), 1),
                "processed_rows_per_s": round(float(p.processedRowsPerSecond or 0), 1),
                "duration_ms": {k: int(v) for k, v in (p.durationMs or {}).items()},
                "offsets_behind": behind,
            }

    def take(self) -> dict[int, dict]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- the events archive (Delta)

ARCHIVE_NAME = "events-archive"
EVENT_COLUMNS = [f.name for f in EVENTS_SCHEMA.fields]


def archive_rows(index_root: str, max_future_s: float, max_age_s: float):
    """mapInPandas function: the valid events of each Kafka batch (the recommender's rules), as Delta rows."""

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in frames:
            index = current_index(index_root)
            now = datetime.now(UTC)
            rows = []
            for value, partition, offset in zip(pdf["value"], pdf["kafka_partition"], pdf["kafka_offset"], strict=True):
                try:
                    event = decode_message(value, now=now, max_future_s=max_future_s, max_age_s=max_age_s)
                except Exception:  # noqa: BLE001 - InvalidEvent or worse: the recommender dead-letters it
                    continue
                track = index.catalogue.get(event["track_id"]) if index is not None else None
                if track is None:
                    continue
                rows.append(
                    {
                        **{
                            k: event.get(k)
                            for k in ("event_id", "user_id", "track_id", "type", "position_ms", "session_id", "client")
                        },
                        "ts": parse_ts(event["ts"]),
                        "genre": track.genre,
                        "kafka_partition": int(partition),
                        "kafka_offset": int(offset),
                        "batch_id": None,
                    }
                )
            frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
            yield frame.astype(
                {
                    "track_id": "Int64",
                    "position_ms": "Int64",
                    "kafka_partition": "Int32",
                    "kafka_offset": "Int64",
                    "batch_id": "Int64",
                }
            )

    return run


class ArchiveSink:
    """foreachBatch: insert-only MERGE on event_id, so replays and duplicate events land once."""

    def __init__(self, settings: Settings):
        self.location = settings.lake_table("events")

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        rows = batch.withColumn("batch_id", F.lit(batch_id).cast("long")).dropDuplicates(["event_id"]).persist()
        try:
            delta_io.merge_upsert(batch.sparkSession, rows, self.location, keys=["event_id"], update=False)
        finally:
            rows.unpersist()


def start_archive(spark: SparkSession, settings: Settings, *, starting_offsets: str = "earliest"):
    """Start the query that appends every valid event to the Delta table ``events``."""
    messages = listen_messages(
        spark, settings, starting_offsets=starting_offsets, max_offsets=settings.stream.max_offsets_per_trigger * 10
    ).select("value", "kafka_partition", "kafka_offset")
    rows = messages.mapInPandas(
        archive_rows(
            str(settings.paths.index_root),
            float(settings.stream.max_future_seconds),
            settings.stream.max_age_days * 86400.0,
        ),
        EVENTS_SCHEMA,
    )
    return (
        rows.writeStream.queryName(ARCHIVE_NAME)
        .foreachBatch(ArchiveSink(settings))
        .option("checkpointLocation", settings.checkpoint(ARCHIVE_NAME))
        .trigger(processingTime=f"{settings.stream.archive_trigger_seconds} seconds")
        .start()
    )


def app_id_for(checkpoint: str) -> str:
    """A stable id per checkpoint: Delta's idempotent-write key and the metrics' query name."""
    import hashlib

    return f"{QUERY_NAME}-{hashlib.sha1(checkpoint.encode()).hexdigest()[:10]}"


def start(
    spark: SparkSession,
    settings: Settings,
    *,
    starting_offsets: str = "earliest",
    archive: bool = True,
    skip_poison: bool = False,
):
    """Start the recommender (and the events archive); returns (queries, sink). The caller stops them.

    ``skip_poison``: the messages of the batch the checkpoint started and never
    committed go to the dead-letter topic instead of being applied.
    """
    if not list_index_versions(settings):
        raise JobInputError(
            f"no index is published under {settings.paths.index_root}; run ./spark-submit.sh build-index first"
        )
    for topic in (settings.kafka.listens_topic, settings.kafka.dlq_topic):
        kafka_io.ensure_topic(settings, topic)
    spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "false")
    spark.conf.set("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
    checkpoint = settings.checkpoint(QUERY_NAME)
    app_id = app_id_for(checkpoint)
    progress = ProgressRecorder()
    spark.streams.addListener(progress)
    sink = BatchSink(settings, app_id, progress)
    with mongo_io.connect(settings) as client:  # create the collections once, from one connection
        db = mongo_io.database(client, settings)
        existing = set(db.list_collection_names())
        for name in ("recommendations", "profiles", "stream_batches"):
            if name not in existing:
                db.create_collection(name)
    quarantine = pending_batch(checkpoint, settings.kafka.listens_topic) if skip_poison else None
    if skip_poison:
        if quarantine is None:
            log.warning("--skip-poison: every batch in %s is committed; nothing to skip", checkpoint)
        else:
            log.warning("--skip-poison: the messages of %s go to the dead-letter topic", quarantine.describe())
    query = (
        build_query(spark, settings, starting_offsets=starting_offsets, quarantine=quarantine)
        .writeStream.queryName(QUERY_NAME)
        .foreachBatch(sink)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{settings.stream.trigger_seconds} seconds")
        .start()
    )
    queries = [query]
    if archive:
        queries.append(start_archive(spark, settings, starting_offsets=starting_offsets))
    return queries, sink


def stop(spark: SparkSession, queries: list, sink: BatchSink) -> None:
    """Stop the queries, detach the progress listener, and close the sink's clients."""
    for q in queries:
        if q.isActive:
            q.stop()
    if sink.progress is not None:
        spark.streams.removeListener(sink.progress)
    sink.close()


def list_index_versions(settings: Settings) -> list[str]:
    try:
        return [store.resolve(Path(settings.paths.index_root), None).name]
    except IndexError_:
        return []


def main(settings: Settings, args: argparse.Namespace) -> int:
    require_kafka(settings)
    require_mongo(settings)
    spark = build_spark(settings, app_name="stream")
    queries, sink = start(
        spark,
        settings,
        starting_offsets=args.starting_offsets,
        archive=not args.no_archive,
        skip_poison=args.skip_poison,
    )
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    print(  # noqa: T201 - command-line output
        f"stream: reading {settings.kafka.listens_topic} at {settings.kafka.bootstrap_servers}, writing "
        f"recommendations to {settings.mongo.database} (checkpoint {settings.checkpoint(QUERY_NAME)}); "
        "Ctrl-C stops it",
        flush=True,
    )
    deadline = time.monotonic() + args.run_seconds if args.run_seconds else None
    try:
        while all(q.isActive for q in queries) and not stopping.is_set():
            if deadline and time.monotonic() > deadline:
                break
            queries[0].awaitTermination(0.5)
    finally:
        stop(spark, queries, sink)
    failed = [f"{q.name}: {q.exception()}" for q in queries if q.exception() is not None]
    if failed:
        raise RuntimeError("the stream failed: " + "; ".join(failed))
    return 0
