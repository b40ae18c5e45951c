"""stream: listening events from Kafka -> listener tastes in Spark's state store -> recommendations in Mongo.

One Structured Streaming query, ``recommender``, in three short modules:

1. source (``stream_source``): ``listens`` as raw bytes with their Kafka
   position, the listener id from the JSON, and the listener's bucket;
2. state (``stream_state``): ``transformWithStateInPandas`` grouped by bucket;
   one Python call per bucket folds all its listeners' messages
   (``recommend.fold``: contract and catalogue checks, dedup, the taste update)
   and answers all its listeners with one batched index search
   (``recommend.rank.recommend_many``); tastes live in a RocksDB MapState;
   each bucket call upserts its listeners' ``recommendations`` documents
   (items and profile together) from the executor;
3. sink (``stream_sink``): ``foreachBatch`` sends the dead letters and records
   the batch in ``stream_batches``.

A second query, ``events-archive`` (``archive``), MERGEs every valid event into
the Delta table ``events`` on a slower trigger.

The checkpoint (``paths.checkpoint_root``/recommender) holds the offsets and
state, so a restart, even after kill -9, replays the unfinished batch from the
last committed state: no event is lost or applied twice, and the sinks are
idempotent for a replayed batch (dead letters are at-least-once: dedup them by
their key). A newly published index version is picked up within two seconds,
without a restart.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import signal
import threading
import time
from pathlib import Path

from pyspark.sql import SparkSession

from conf.errors import JobInputError
from conf.settings import Settings, path_argument
from connectors import kafka_io, mongo_io
from connectors.services import require_kafka, require_mongo
from index import store
from index.manifest import IndexError_
from spark_jobs.session import build_spark
from spark_jobs.streaming.archive import ARCHIVE_NAME, start_archive
from spark_jobs.streaming.catalogue import CatalogueLookup
from spark_jobs.streaming.index_delivery import IndexShipper, executor_root
from spark_jobs.streaming.layout import check_layout
from spark_jobs.streaming.poison import Quarantine, check_files, has_started, pending_batch
from spark_jobs.streaming.rows import OUTPUT_SCHEMA
from spark_jobs.streaming.serving import Serving
from spark_jobs.streaming.sink import QUERY_NAME, BatchSink, ProgressRecorder
from spark_jobs.streaming.source import bucket_of, listen_messages
from spark_jobs.streaming.state import TasteBuckets

log = logging.getLogger("earshot.stream")
ARCHIVE_POOL = "archive"  # the events archive's scheduler pool: the recommender's jobs take turns with its MERGE
STOP_WAIT_S = 15.0  # how long a stop lets a running archive batch (its MERGE) finish before stopping the query


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
        "--initial-tastes",
        metavar="PATH",
        type=path_argument,
        help="a Parquet folder of (user_id string, taste binary) rows that seeds the listeners' tastes when the "
        "checkpoint is new (ignored afterwards); see bench.freshness --state-listeners",
    )
    parser.add_argument(
        "--skip-poison",
        action="store_true",
        help="send the messages of the batch that failed last (started, never committed) to the dead-letter "
        "topic instead of applying them; for a batch that fails on every restart",
    )


def build_query(
    spark: SparkSession,
    settings: Settings,
    *,
    starting_offsets: str = "earliest",
    quarantine: Quarantine | None = None,
    initial_tastes: str | None = None,
    bucket_keys: list[int] | None = None,
):
    """The streaming DataFrame of processor output (not started); ``bucket_keys``: the checkpoint's state key
    of each listener bucket (``stream_layout.check_layout``; the bucket numbers without)."""
    messages = listen_messages(
        spark, settings, starting_offsets=starting_offsets, max_offsets=settings.stream.max_offsets_per_trigger,
        bucket_keys=bucket_keys,
    )  # fmt: skip
    processor = TasteBuckets(
        index_root=executor_root(settings),
        max_future_s=float(settings.stream.max_future_seconds),
        max_age_s=settings.stream.max_age_s,
        half_life_ms=settings.stream.half_life_hours * 3600 * 1000,
        k=settings.stream.recommendations,
        serving=Serving.of(settings),
        lookup=CatalogueLookup.of(settings),
        quarantine=quarantine,
        query_key=app_id_for(settings.checkpoint(QUERY_NAME)),
        cache_listeners=settings.stream.taste_cache_listeners,
    )
    initial = None
    if initial_tastes:
        seeds = spark.read.parquet(initial_tastes).select("user_id", "taste")
        bucket = bucket_of("user_id", bucket_keys or list(range(settings.stream.state_buckets)))
        initial = seeds.withColumn("bucket", bucket).groupBy("bucket")
    return messages.groupBy("bucket").transformWithStateInPandas(
        statefulProcessor=processor,
        outputStructType=OUTPUT_SCHEMA,
        outputMode="Append",
        timeMode="None",
        initialState=initial,
    )


def app_id_for(checkpoint: str) -> str:
    """A stable id per checkpoint: Delta's idempotent-write key and the metrics' query name."""
    return f"{QUERY_NAME}-{hashlib.sha1(checkpoint.encode()).hexdigest()[:10]}"


def start(
    spark: SparkSession,
    settings: Settings,
    *,
    starting_offsets: str = "earliest",
    archive: bool = True,
    skip_poison: bool = False,
    initial_tastes: str | None = None,
):
    """Start the recommender (and the events archive); returns (queries, sink). The caller stops them.

    ``skip_poison``: the messages of the batch the checkpoint started and never
    committed go to the dead-letter topic instead of being applied.
    """
    prepare(spark, settings)
    checkpoint = settings.checkpoint(QUERY_NAME)
    check_files(checkpoint)
    bucket_keys = check_layout(checkpoint, settings.stream.state_buckets)
    fresh = not has_started(checkpoint)
    if initial_tastes and not fresh:
        log.warning("--initial-tastes is ignored: the checkpoint %s already holds state", checkpoint)
    app_id = app_id_for(checkpoint)
    progress = ProgressRecorder()
    sink = BatchSink(settings, app_id, progress)
    if settings.stream.index_delivery == "spark":
        sink.after_batch = IndexShipper(spark, settings)
        sink.after_batch()  # before the first batch's tasks
    quarantine = poison_batch(checkpoint, settings) if skip_poison else None
    query = (
        build_query(
            spark,
            settings,
            starting_offsets=starting_offsets,
            quarantine=quarantine,
            initial_tastes=initial_tastes if fresh else None,
            bucket_keys=bucket_keys,
        )
        .writeStream.queryName(QUERY_NAME)
        .foreachBatch(sink)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{settings.stream.trigger_seconds} seconds")
        .start()
    )
    progress.attach(query)
    queries = [query]
    if archive:
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", ARCHIVE_POOL)  # the query's thread inherits it
        try:
            queries.append(start_archive(spark, settings, app_id=app_id, starting_offsets=starting_offsets))
        finally:
            spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)
    return queries, sink


def prepare(spark: SparkSession, settings: Settings) -> None:
    """What the stream needs before it starts: a published index, its topics and collections, its state settings."""
    if not list_index_versions(settings):
        raise JobInputError(
            f"no index is published under {settings.paths.index_root}; run ./spark-submit.sh build-index first"
        )
    for topic in (settings.kafka.listens_topic, settings.kafka.dlq_topic):
        kafka_io.ensure_topic(settings, topic)
    with mongo_io.connect(settings) as client:  # create the collections once, from one connection
        db = mongo_io.database(client, settings)
        existing = set(db.list_collection_names())
        for name in ("recommendations", "stream_batches"):
            if name not in existing:
                db.create_collection(name)
    # The stateful step's tasks: one per core, not the batch jobs' shuffle size (a checkpoint keeps its own).
    partitions = settings.stream.partitions or spark.sparkContext.defaultParallelism
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "false")
    spark.conf.set("spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled", "true")
    # Without it RocksDB reads every key before writing it, only to count rows for the progress report.
    spark.conf.set("spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows", "false")


def poison_batch(checkpoint: str, settings: Settings):
    """--skip-poison: the batch the checkpoint started and never committed, or None (and a warning either way)."""
    quarantine = pending_batch(checkpoint, settings.kafka.listens_topic)
    if quarantine is None:
        log.warning("--skip-poison: every batch in %s is committed; nothing to skip", checkpoint)
    else:
        log.warning("--skip-poison: the messages of %s go to the dead-letter topic", quarantine.describe())
    return quarantine


def stop(spark: SparkSession, queries: list, sink: BatchSink) -> None:
    """Stop the queries (the archive between its batches, :func:`between_batches`) and close the sink's clients
    (which store the last batches' progress)."""
    for q in queries:
        if q.isActive:
            if q.name == ARCHIVE_NAME:
                between_batches(q, STOP_WAIT_S)
            q.stop()
    sink.close()


def between_batches(query, wait_s: float, *, poll_s: float = 0.2) -> bool:
    """Wait up to ``wait_s`` for ``query``'s running batch to end; True when it is between batches.

    Stopping the archive inside its foreachBatch interrupts a Py4J call, and Spark matches the interrupted
    call's long message with a regex that recurses per character (StreamExecution's PROXY_ERROR): a
    ``java.lang.StackOverflowError`` in the log. Nothing is lost (the batch replays; its MERGE is
    idempotent), but it reads like a crash. The recommender's batches are short and stop cleanly.
    """
    deadline = time.monotonic() + wait_s
    while query.isActive and query.status.get("isTriggerActive"):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


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
        initial_tastes=args.initial_tastes,
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
