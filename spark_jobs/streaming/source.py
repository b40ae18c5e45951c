"""The ``listens`` topic as the stream's input rows: raw bytes, their Kafka position, the listener and its bucket."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from conf.settings import Settings
from connectors import kafka_io


def listen_messages(
    spark: SparkSession,
    settings: Settings,
    *,
    starting_offsets: str,
    max_offsets: int,
    bucket_keys: list[int] | None = None,
) -> DataFrame:
    """(bucket, user_key, value, kafka_partition, kafka_offset, kafka_ts_ms) for every message of ``listens``.

    ``value`` stays bytes: any byte sequence can arrive, and it is decoded and
    checked in Python (``events.contract.decode_message``). ``user_key`` is the
    JSON ``user_id`` only when the value is valid UTF-8 and the extracted id is
    too, else the empty key (whose messages are rejected); ``bucket`` is the
    stateful step's key: :func:`bucket_of` the user key, with the checkpoint's
    ``bucket_keys`` (``stream_layout.check_layout``; the bucket numbers without).
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
    user_key = F.when(F.is_valid_utf8(user_id), user_id).otherwise(F.lit(""))
    return source.select(
        bucket_of(user_key, bucket_keys or list(range(settings.stream.state_buckets))).alias("bucket"),
        user_key.alias("user_key"),
        F.col("value").alias("value"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        (F.unix_micros(F.col("timestamp")) / 1000).cast("long").alias("kafka_ts_ms"),
    )


def bucket_of(user: Column | str, keys: list[int]) -> Column:
    """The state key of a listener's bucket: bucket ``pmod(xxhash64(user), len(keys))`` is ``keys[bucket]``."""
    bucket = F.pmod(F.xxhash64(user), F.lit(len(keys)))
    if keys == list(range(len(keys))):
        return bucket.cast("int")
    return F.element_at(F.array(*(F.lit(k) for k in keys)), (bucket + 1).cast("int")).cast("int")
