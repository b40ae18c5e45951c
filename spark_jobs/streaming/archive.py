"""The events archive: a second query that MERGEs every valid listening event into Delta ``events``.

It reads the same topic as the recommender on a slower trigger
(``stream.archive_trigger_seconds``), keeps the valid events by the same rules
and the same code (``recommend.fold.sort_messages``: the event contract, then
the catalogue: the index version the recommender uses, from
``index_delivery.executor_root``, and the serving store's ``tracks`` for ids
its snapshot lacks) and MERGEs them on ``event_id`` (insert-only), so replays
and duplicates land once. It is a query of its own because a Delta commit costs
seconds on a small machine and would delay every recommendation.

Every message is accounted for: each batch's ``stream_batches`` document
(``query: events-archive``) says how many were read, archived, rejected (by
reason: the recommender dead-letters the same messages), duplicates (already
in the table, or twice in the batch) and history messages (``import-history``
archives their listens itself, with their own times), and input = archived +
rejected + duplicates + histories.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf.settings import Settings
from connectors import delta_io, mongo_io
from events.contract import FIELDS, HISTORY, spark_schema
from recommend.fold import Lookup, Rules, sort_messages
from spark_jobs.streaming.catalogue import CatalogueLookup
from spark_jobs.streaming.index_delivery import executor_root
from spark_jobs.streaming.source import listen_messages
from spark_jobs.streaming.state import current_index

log = logging.getLogger("earshot.stream")

# The contract's fields (``ts`` parsed into a timestamp), what the archive adds, and the Kafka position.
EVENTS_SCHEMA = T.StructType(
    [T.StructField(f.name, T.TimestampType() if f.name == "ts" else f.dataType) for f in spark_schema().fields]
    + [
        T.StructField("genre", T.StringType()),
        T.StructField("kafka_partition", T.IntegerType()),
        T.StructField("kafka_offset", T.LongType()),
        T.StructField("batch_id", T.LongType()),
    ]
)
# What the archive's Python step hands the sink: the rows, and for a rejected message its reason.
ARCHIVE_ROW_SCHEMA = T.StructType([*EVENTS_SCHEMA.fields, T.StructField("rejected", T.StringType())])

ARCHIVE_NAME = mongo_io.ARCHIVE_QUERY  # the query, its checkpoint and its stream_batches documents
EVENT_COLUMNS = [f.name for f in EVENTS_SCHEMA.fields]
ROW_COLUMNS = [f.name for f in ARCHIVE_ROW_SCHEMA.fields]
CONTRACT_COLUMNS = [f.name for f in FIELDS if f.name != "ts"]  # ts is parsed into a timestamp
STRING_COLUMNS = [f.name for f in ARCHIVE_ROW_SCHEMA.fields if isinstance(f.dataType, T.StringType)]
REASON_CHARS = 120  # rejections are counted by the first characters of their reason (ids differ)
# A timestamp as text in the session's time zone, read back the same way by a timestamp literal.
TS_TEXT = "yyyy-MM-dd HH:mm:ss.SSSSSS"


def archive_rows(index_root: str, max_future_s: float, max_age_s: float, lookup: Lookup | None = None):
    """mapInPandas function: every message of a Kafka batch as a row: a valid event (the recommender's rules)
    with its genre, or a rejected message with its reason in ``rejected``."""

    def run(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in frames:
            index = current_index(index_root)
            rules = Rules(now=datetime.now(UTC), max_future_s=max_future_s, max_age_s=max_age_s)
            if "kafka_ts_ms" not in pdf:
                pdf = pdf.assign(kafka_ts_ms=None)
            by_user, dead = sort_messages(pdf, index, rules, lookup)
            rows = [
                {
                    **{k: event.get(k) for k in CONTRACT_COLUMNS},
                    "ts": pd.Timestamp(event["ts_ms"], unit="ms", tz="UTC"),
                    "genre": event["genre"],
                    "kafka_partition": event["kafka_partition"],
                    "kafka_offset": event["kafka_offset"],
                }
                for events in by_user.values()
                for event in events
            ]
            rows += [
                {"rejected": d["reason"], "kafka_partition": d["kafka_partition"], "kafka_offset": d["kafka_offset"]}
                for d in dead
            ]
            yield _frame(rows)

    return run


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    # A text column with no value in the whole batch would come out as float NaN, which Arrow
    # cannot hand to Spark as a string column: text columns are objects with None for no value.
    for name in STRING_COLUMNS:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame.astype(
        {
            "track_id": "Int64",
            "position_ms": "Int64",
            "kafka_partition": "Int32",
            "kafka_offset": "Int64",
            "batch_id": "Int64",
        }
    )


def merge_events(spark: SparkSession, rows: DataFrame, location: str, span: tuple | None = None) -> int:
    """Insert the events of ``rows`` that the table does not hold yet (by ``event_id``); returns how many.

    A retried event carries its own ``ts``, so the MERGE matches on it too, and on the batch's ts range as a
    condition on the table alone: Delta then reads only the files whose ts statistics meet that range (the
    archive grows in time order), and a MERGE costs the same in year five as on day one (``bench.archive``).
    ``span``: the rows' (lowest, highest) ``ts`` as :data:`TS_TEXT` text, when the caller knows it already
    (one Spark job less); (None, None) when there are no rows.
    """
    rows = rows.dropDuplicates(["event_id"])
    if span is None:
        span = rows.agg(F.date_format(F.min("ts"), TS_TEXT), F.date_format(F.max("ts"), TS_TEXT)).first()
    lo, hi = span
    if lo is None:
        delta_io.ensure_table(rows, location)  # readers find the table from the first batch on
        return 0
    return delta_io.merge_upsert(
        spark,
        rows,
        location,
        keys=["event_id", "ts"],
        update=False,
        evolve=True,  # an archive written before a column was added (``shared``) gains it
        target_where=f"t.ts >= timestamp'{lo}' AND t.ts <= timestamp'{hi}'",
    )


def tally(batch: DataFrame) -> tuple[int, dict[str, int], int, tuple]:
    """One Spark job over an archive batch's rows: how many were read, rejected (by reason) and history messages,
    and the events' ts span as :data:`TS_TEXT` text ((None, None) when there are none), for :func:`merge_events`.

    One aggregation instead of a count, a grouped count, a filtered count and the MERGE's own span query: on two
    cores each Spark job of a batch costs ~0.1-0.3 s, which the recommender's batches share."""
    reason = F.substring("rejected", 1, REASON_CHARS)
    event = F.col("rejected").isNull() & (F.col("type") != HISTORY)
    groups = (
        batch.groupBy(reason.alias("reason"), (F.col("type") == HISTORY).alias("history"))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.date_format(F.min(F.when(event, F.col("ts"))), TS_TEXT).alias("lo"),
            F.date_format(F.max(F.when(event, F.col("ts"))), TS_TEXT).alias("hi"),
        )
        .collect()
    )
    read = sum(int(g["n"]) for g in groups)
    rejected: dict[str, int] = {}
    for g in groups:
        if g["reason"] is not None:
            rejected[g["reason"]] = rejected.get(g["reason"], 0) + int(g["n"])
    histories = sum(int(g["n"]) for g in groups if g["reason"] is None and g["history"])
    los = [g["lo"] for g in groups if g["lo"] is not None]
    his = [g["hi"] for g in groups if g["hi"] is not None]
    return read, rejected, histories, (min(los), max(his)) if los else (None, None)


class ArchiveSink:
    """foreachBatch: insert-only MERGE on event_id, so replays and duplicate events land once; each batch's
    accounting in ``stream_batches``."""

    def __init__(self, settings: Settings, app_id: str):
        self.settings = settings
        self.location = settings.lake_table("events")
        self.app_id = app_id

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        batch = batch.persist()
        try:
            read, rejected, histories, span = tally(batch)
            valid = batch.filter(F.col("rejected").isNull()).drop("rejected")
            rows = valid.filter(F.col("type") != HISTORY).withColumn("batch_id", F.lit(batch_id).cast("long"))
            inserted = merge_events(batch.sparkSession, rows, self.location, span)
            events = read - sum(rejected.values()) - histories
            self.record(batch_id, read=read, archived=inserted, rejected=rejected, duplicates=events - inserted,
                        histories=histories)  # fmt: skip
        finally:
            batch.unpersist()

    def record(
        self, batch_id: int, *, read: int, archived: int, rejected: dict[str, int], duplicates: int, histories: int = 0
    ) -> None:
        """The batch's accounting in ``stream_batches``: read = archived + rejected + duplicates + histories."""
        if not read:
            return
        doc = {
            "_id": f"{self.app_id}:{ARCHIVE_NAME}:{batch_id:010d}",
            "query": ARCHIVE_NAME,
            "stream": self.app_id,
            "batch_id": batch_id,
            "at": datetime.now(UTC),
            "input_rows": read,
            "archived": archived,
            "rejected": sum(rejected.values()),
            "rejected_by_reason": [{"reason": k, "count": v} for k, v in sorted(rejected.items())],
            "duplicates": duplicates,
            "histories": histories,
        }
        if rejected:
            log.info("archive batch %s: %s of %s messages rejected (%s)", batch_id, doc["rejected"], read,
                     "; ".join(f"{v} {k}" for k, v in sorted(rejected.items())))  # fmt: skip
        with mongo_io.connect(self.settings) as client:
            db = mongo_io.database(client, self.settings)
            mongo_io.retrying(
                lambda: mongo_io.set_fields_many(db, "stream_batches", [doc]),
                seconds=self.settings.mongo.write_retry_seconds,
                what="the archive's accounting",
            )


def start_archive(spark: SparkSession, settings: Settings, *, app_id: str, starting_offsets: str = "earliest"):
    """Start the query that appends every valid event to the Delta table ``events``."""
    messages = listen_messages(
        spark, settings, starting_offsets=starting_offsets, max_offsets=settings.stream.max_offsets_per_trigger * 10
    ).select("user_key", "value", "kafka_partition", "kafka_offset", "kafka_ts_ms")
    rows = messages.mapInPandas(
        archive_rows(
            executor_root(settings),  # the recommender's index, delivered the same way
            float(settings.stream.max_future_seconds),
            settings.stream.max_age_s,
            CatalogueLookup.of(settings),
        ),
        ARCHIVE_ROW_SCHEMA,
    )
    return (
        rows.writeStream.queryName(ARCHIVE_NAME)
        .foreachBatch(ArchiveSink(settings, app_id))
        .option("checkpointLocation", settings.checkpoint(ARCHIVE_NAME))
        .trigger(processingTime=f"{settings.stream.archive_trigger_seconds} seconds")
        .start()
    )
