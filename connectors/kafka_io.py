"""Every read and write of Kafka: topic admin, Spark sources and sinks, plain clients."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from conf.settings import Settings
from connectors.services import any_reachable, kafka_hosts

if TYPE_CHECKING:  # the OpenSubsonic server and the dashboard use this module's plain clients without Spark
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("earshot.kafka")
_ensured: set[tuple[str, str]] = set()  # (bootstrap servers, topic) this process has seen exist
_ensured_lock = threading.Lock()


def ensure_topic(settings: Settings, name: str, *, partitions: int | None = None) -> bool:
    """Create topic ``name`` if it is missing; True when it was created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        if name in set(admin.list_topics()):
            return False
        topic = NewTopic(name, partitions or settings.kafka.partitions, settings.kafka.replication_factor)
        try:
            admin.create_topics([topic])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        admin.close()


def ensure_topic_once(settings: Settings, name: str) -> bool:
    """Create topic ``name`` if it is missing, once per process: for the event producers outside Spark (the
    OpenSubsonic server, the dashboard, the simulator), which may send before the stream has ever run and created
    it. A broker without automatic topic creation would otherwise hold every send for its metadata timeout and
    then fail it as if the broker did not answer.

    Best effort: False (and asked again at the next call) when no bootstrap server accepts a connection or the
    broker refuses; the send that follows then fails with the broker's own reason.
    """
    key = (settings.kafka.bootstrap_servers, name)
    if key in _ensured:
        return True
    if not any_reachable(kafka_hosts(settings.kafka.bootstrap_servers), 2.0):
        return False
    with _ensured_lock:
        if key in _ensured:
            return True
        try:
            if ensure_topic(settings, name):
                log.warning("created topic %s (%d partitions): nothing had created it yet", name,
                            settings.kafka.partitions)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the send that follows says what is wrong with the broker
            log.warning("could not check or create topic %s: %s", name, exc)
            return False
        _ensured.add(key)
        return True


def producer(settings: Settings):
    """A plain producer of raw bytes: every write acknowledged by all replicas, a retried send written once."""
    from kafka import KafkaProducer

    return KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", enable_idempotence=True)


def write_batch(df: DataFrame, settings: Settings, *, topic: str) -> None:
    """Write a batch DataFrame with ``key`` and ``value`` columns to ``topic``."""
    (
        df.write.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
        .option("topic", topic)
        .save()
    )


FETCH_MAX_WAIT_MS = 10


def read_stream(
    spark: SparkSession,
    settings: Settings,
    *,
    topic: str,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
) -> DataFrame:
    """A streaming DataFrame over ``topic`` (key, value, topic, partition, offset, timestamp)."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets)
        .option("failOnDataLoss", "false")
        # A task's consumer comes from Spark's pool with a fetch left in flight at the end of what it read
        # last; the broker holds that fetch up to fetch.max.wait.ms (500 ms by default) when no new data
        # comes, and the next seek waits for it: most of a light micro-batch's read stage.
        .option("kafka.fetch.max.wait.ms", str(FETCH_MAX_WAIT_MS))
    )
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return reader.load()
