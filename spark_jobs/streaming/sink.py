"""The recommender's driver-side sinks: dead letters and batch metrics.

:class:`BatchSink` is the ``foreachBatch`` of the recommender. The listeners'
``recommendations`` documents are written by the stateful step itself, on the
executors (``stream_serving.Serving``); what reaches the driver is small: the
dead letters, and one summary per bucket call (events applied, duplicates,
each applied event's latency, the stage costs: ``rows.bucket_summary``). The sink sends the dead letters, then records
the batch in ``stream_batches`` with Spark's own progress
(:class:`ProgressRecorder`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from conf.settings import Settings
from connectors import kafka_io, mongo_io
from events.contract import dead_letter_raw
from spark_jobs.streaming.poison import pending_batch

log = logging.getLogger("earshot.stream")

QUERY_NAME = "recommender"
STAGES = (
    "decode_ms",
    "state_read_ms",
    "fold_ms",
    "recommend_ms",
    "state_write_ms",
    "serve_ms",
    "serve_wait_ms",
    "output_ms",
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
        self.after_batch = None  # called on the driver after each batch is written (the index shipper)
        self._recorder = ThreadPoolExecutor(1, thread_name_prefix="stream-batches")
        self._recording: Future | None = None

    def batch_key(self, batch_id: int) -> str:
        return f"{self.app_id}:{batch_id:010d}"

    def store_progress(self) -> None:
        """Add Spark's progress of the batches finished so far to their documents."""
        if self.progress is None:
            return
        docs = [{"_id": self.batch_key(b), **fields} for b, fields in self.progress.take().items()]
        self.write("stream_batches", docs)

    def write(self, collection: str, docs: list[dict]) -> None:
        """``$set`` the documents, waiting out a database outage as the serving writes do."""
        mongo_io.retrying(
            lambda: mongo_io.set_fields_many(self.db, collection, docs),
            seconds=self.settings.mongo.write_retry_seconds,
            what=collection,
        )

    @property
    def db(self):
        if self._client is None:
            self._client = mongo_io.connect(self.settings)
        return mongo_io.database(self._client, self.settings)

    def producer(self):
        if self._producer is None:
            self._producer = kafka_io.producer(self.settings)
        return self._producer

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            self._write(batch, batch_id)
            if self.after_batch is not None:
                self.after_batch()
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
        dlq = out[kinds == "dlq"]
        buckets = [json.loads(s) for s in out.loc[kinds == "bucket", "stats"]]
        applied = sum(b["applied"] for b in buckets)
        duplicates = sum(b["duplicates"] for b in buckets)
        now = datetime.now(UTC)
        latencies = np.asarray([x for b in buckets for x in b["latency_ms"]], dtype=np.float64)
        dlq_started = time.time()
        self.send_dead_letters(dlq, now)
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
            "users": sum(b["users"] for b in buckets),
            "buckets": len(buckets),
            # Listeners whose taste came from the Python worker's copy, not a state-store read.
            "tastes_cached": sum(b.get("cached", 0) for b in buckets),
            "state_and_query_ms": round((collected - started) * 1000, 1),
            "dlq_ms": round((dlq_done - dlq_started) * 1000, 1),
            "total_ms": round((dlq_done - started) * 1000, 1),
            # Summed over the bucket calls (which run in parallel, one task per shuffle partition).
            "stage_ms": {k: round(sum(b.get(k, 0.0) for b in buckets), 1) for k in STAGES},
            "latency_ms": _summary(latencies),
            "latency_events": len(latencies),  # what the sample below stands for (it keeps at most 2,000)
            "latency_sample_ms": [round(float(x), 1) for x in _sample(latencies, 2000)],
        }
        self.record(metrics)

    def record(self, metrics: dict) -> None:
        """The batch's document in ``stream_batches``, written on a thread of its own so that the next batch
        need not wait for it (one write at a time: the previous one is waited for, and its error raised, here)."""
        if self._recording is not None:
            self._recording.result()

        def write() -> None:
            self.write("stream_batches", [metrics])
            self.store_progress()

        self._recording = self._recorder.submit(write)

    def send_dead_letters(self, dlq: pd.DataFrame, now: datetime) -> None:
        """One bounded JSON letter per rejected message, keyed by its source partition:offset."""
        for r in dlq.itertuples():
            letter = {
                "reason": r.reason,
                **dead_letter_raw(r.raw),  # bounded: a 1 MB message must not make a letter over Kafka's limit
                "user_key": r.user_id,
                "source": {
                    "topic": self.settings.kafka.listens_topic,
                    "partition": int(r.kafka_partition),
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

    def close(self) -> None:
        try:
            if self._recording is not None:
                self._recording.result()
            self._recorder.shutdown()
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


class ProgressRecorder:
    """Spark's own progress per batch (rates, durations, offsets behind the latest), for the sink to store.

    Read from the query when the sink asks (:meth:`take`, once a batch, on the sink's recording thread): the
    newest entries of its recent progress, one JSON document each, back to the last batch taken. A Python
    ``StreamingQueryListener`` would instead get every progress event through Py4J callbacks that read each
    field with a call of its own (dozens a batch, some looking classes up in every jar: a tenth of the
    driver JVM's CPU in a profile of the stream at 2,000 events/s). The sink is the only writer of
    ``stream_batches``: FerretDB's SQLite backend can stall when two connections write one new collection
    at once.
    """

    def __init__(self):
        self._query = None
        self._taken = -1  # the newest batch id taken
        self._lock = threading.Lock()

    def attach(self, query) -> None:
        """The started query whose progress to read."""
        self._query = query

    def take(self) -> dict[int, dict]:
        """The progress of the batches that read rows since the last call, by batch id."""
        with self._lock:
            query = self._query
            if query is None:
                return {}
            found = {}
            recent = query._jsq.recentProgress()  # noqa: SLF001 - one Py4J call for the array, one per entry read
            for at in range(len(recent) - 1, -1, -1):
                p = json.loads(recent[at].json())
                if p.get("batchId", -1) <= self._taken:
                    break
                if p.get("name") == QUERY_NAME and p.get("numInputRows"):
                    found[p["batchId"]] = _progress_fields(p)
            self._taken = max([self._taken, *found], default=self._taken)
            return found


def _progress_fields(p: dict) -> dict:
    """What ``stream_batches`` keeps of one progress document (``StreamingQueryProgress.json``)."""
    source = (p.get("sources") or [None])[0] or {}
    behind = {k: _number(v) for k, v in (source.get("metrics") or {}).items() if "OffsetsBehindLatest" in k}
    return {
        "num_input_rows": p["numInputRows"],
        "input_rows_per_s": round(float(p.get("inputRowsPerSecond") or 0), 1),
        "processed_rows_per_s": round(float(p.get("processedRowsPerSecond") or 0), 1),
        "duration_ms": {k: int(v) for k, v in (p.get("durationMs") or {}).items()},
        "offsets_behind": behind,
    }


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
