"""The events archive: a second query that MERGEs every valid listening event into Delta ``events``.

It reads the same topic as the recommender on a slower trigger
(``stream.archive_trigger_seconds``), keeps the valid events by the same rules
(the event contract and the catalogue of the current index) and MERGEs them on
``event_id`` (insert-only), so replays and duplicates land once. It is a query
of its own because a Delta commit costs seconds on a small machine and would
delay every recommendation.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf.settings import Settings
from connectors import delta_io
from events.contract import FIELDS, decode_message, parse_ts
from spark_jobs.streaming.source import listen_messages
from spark_jobs.streaming.state import current_index

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
        T.StructField("shared", T.StringType()),
        T.StructField("context", T.StringType()),
        T.StructField("genre", T.StringType()),
        T.StructField("kafka_partition", T.IntegerType()),
        T.StructField("kafka_offset", T.LongType()),
        T.StructField("batch_id", T.LongType()),
    ]
)


ARCHIVE_NAME = "events-archive"
EVENT_COLUMNS = [f.name for f in EVENTS_SCHEMA.fields]
CONTRACT_COLUMNS = [f.name for f in FIELDS if f.name != "ts"]  # ts is parsed into a timestamp
STRING_COLUMNS = [f.name for f in EVENTS_SCHEMA.fields if isinstance(f.dataType, T.StringType)]


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
                        **{k: event.get(k) for k in CONTRACT_COLUMNS},
                        "ts": parse_ts(event["ts"]),
                        "genre": track.genre,
                        "kafka_partition": int(partition),
                        "kafka_offset": int(offset),
                        "batch_id": None,
                    }
                )
            frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
            # A text column with no value in the whole batch would come out as float NaN, which Arrow
            # cannot hand to Spark as a string column: text columns are objects with None for no value.
            for name in STRING_COLUMNS:
                frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
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
            # evolve: an archive written before a column was added (``shared``) gains it.
            delta_io.merge_upsert(batch.sparkSession, rows, self.location, keys=["event_id"], update=False, evolve=True)
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
