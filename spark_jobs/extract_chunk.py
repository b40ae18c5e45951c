"""One chunk of extract: analyse its audio with the pandas UDF, split the outcome, write it.

Good rows become Delta ``features`` (and ``embeddings`` with musicnn on) and the Mongo ``tracks``
document's ``features``; failures become ``extract_errors`` rows with a readable reason. Used by
``spark_jobs.extract`` (the job) and, for the Mongo document, by ``check`` and ``import-fma-features``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conf.errors import JobInputError
from conf.settings import Settings, local_path
from connectors import delta_io, files, mongo_io
from spark_jobs.session import session_settings
from udfs.pandas_udfs import make_analyse_udf
from udfs.schema import FEATURE_COLUMNS, MOOD_AXES, vector_to_bytes

OPEN_COST = 1 << 40  # bytes a file "costs" in scan planning: far above any audio file, so files are counted


def analyse_chunk(
    spark: SparkSession, settings: Settings, chunk: DataFrame, *, version: str, weights=None
) -> tuple[DataFrame, int]:
    """Read the chunk's audio and run the UDF: one row per track with its outcome, cached, and their count.

    The files are read in about ``defaultParallelism * 4`` scan partitions of equal file counts
    (:func:`file_count_partitions`) and each is analysed where it is read: a slow track holds up
    only its own partition, and the audio's bytes are never shuffled. These settings, and the UDF's
    ``extract.batch_size`` tracks per Arrow batch, hold for this chunk's analysis only: a ``pipeline``'s
    later steps (build-index's pandas UDFs) keep Spark's own.
    """
    paths = [r.audio_path for r in chunk.select("audio_path").collect()]
    parts = max(1, min(len(paths), spark.sparkContext.defaultParallelism * 4))
    analyse_audio = make_analyse_udf(
        sample_rate=settings.extract.sample_rate,
        clip_seconds=settings.extract.clip_seconds,
        numba_cache_dir=settings.paths.numba_cache_dir,
        time_limit_s=settings.extract.track_time_limit_s,
        weights=weights,
    )
    batch = {"spark.sql.execution.arrow.maxRecordsPerBatch": str(settings.extract.batch_size)}  # tracks per UDF call
    with file_count_partitions(spark, files=len(paths), parts=parts), session_settings(spark, batch):
        audio = files.binary_files(spark, paths).select(F.col("path").alias("audio_path"), "content")
        unread = [p for p in paths if p.rsplit("/", 1)[-1].startswith("_") and local_path(p)]
        if unread:  # Spark passes over a file named with a leading _: its bytes are read here
            local = [(p, Path(local_path(p)).read_bytes()) for p in unread]
            audio = audio.unionByName(spark.createDataFrame(local, "audio_path string, content binary"))
        analysed = (
            audio.join(F.broadcast(chunk), "audio_path")
            .withColumn("a", analyse_audio("content"))
            .drop("content")
            .select(
                "track_id",
                "audio_path",
                "source_size",
                "source_mtime",
                F.lit(version).alias("feature_version"),
                "a.*",
            )
            .persist()
        )
        return analysed, analysed.count()


@contextlib.contextmanager
def file_count_partitions(spark: SparkSession, *, files: int, parts: int) -> Iterator[None]:
    """Scans planned inside split their files into ``parts`` partitions of equal counts, whatever their sizes.

    Spark packs files into a scan's partitions by bytes (``spark.sql.files.maxPartitionBytes``, each file
    counted as its length plus ``openCostInBytes``): a 4 MB open cost and a 128 MB split would put a
    chunk of a thousand 1 MB clips in eight partitions on any cluster, or a chunk of long FLAC files in
    one each. With an open cost far above any file's size and a split of ``files / parts`` open costs,
    every partition gets the same number of files. In local mode the files are also listed on the driver
    (Spark would otherwise run a job of one task per path to list more than 32 of them).
    """
    per_part = -(-files // parts)
    settings = {
        "spark.sql.files.openCostInBytes": str(OPEN_COST),
        "spark.sql.files.maxPartitionBytes": str(per_part * OPEN_COST - OPEN_COST // 2),
        "spark.sql.files.minPartitionNum": "1",
    }
    if spark.sparkContext.master.startswith("local"):
        settings["spark.sql.sources.parallelPartitionDiscovery.threshold"] = str(max(32, files))
    with session_settings(spark, settings):
        yield


def feature_rows(analysed: DataFrame) -> DataFrame:
    # One expression list for the JVM to parse: 518 ``values[i].alias(name)`` columns built through py4j
    # one call at a time took about a second a chunk.
    items = [f"`values`[{i}] AS `{name}`" for i, name in enumerate(FEATURE_COLUMNS)]
    return analysed.filter(F.col("error").isNull()).selectExpr(
        "track_id", "feature_version", *items, "tempo", "audio_path AS source_path", "source_size", "source_mtime",
        "source_rate", "channels", "clip_s", "current_timestamp() AS extracted_at",
    )  # fmt: skip


def embedding_rows(analysed: DataFrame, model: str) -> DataFrame:
    """Delta ``embeddings``: one pretrained embedding per analysed track (``udfs.musicnn``), beside its features."""
    return analysed.filter(F.col("error").isNull() & F.col("embedding").isNotNull()).select(
        "track_id",
        "feature_version",
        F.lit(model).alias("model"),
        F.col("embedding").alias("vector"),
        "source_size",
        "source_mtime",
        F.current_timestamp().alias("extracted_at"),
    )


def embedding_weights(settings: Settings):
    """musicnn's weights for the UDF (read once, on the driver), or None when ``extract.embedding`` is none."""
    if settings.extract.embedding == "none":
        return None
    from udfs import musicnn

    try:
        return musicnn.load_weights(Path(settings.paths.models_dir) / musicnn.WHEEL)
    except musicnn.WeightsError as exc:
        raise JobInputError(f"{exc}; or set extract.embedding: none") from None


def error_rows(analysed: DataFrame) -> DataFrame:
    return analysed.filter(F.col("error").isNotNull()).select(
        "track_id",
        "feature_version",
        F.col("audio_path").alias("path"),
        F.col("error").alias("reason"),
        "source_size",
        "source_mtime",
        F.current_timestamp().alias("failed_at"),
    )


def write_outcomes(
    spark: SparkSession, settings: Settings, analysed: DataFrame, *, version: str, fresh: bool, model: str | None = None
) -> None:
    """Commit a chunk's outcomes (``analysed``: :func:`analyse_chunk`'s rows; ``model``: the embedding's
    name, when the chunk has one). ``fresh``: no track of the chunk has an earlier outcome, so
    appending is enough; otherwise MERGE, and drop each track's row from the other tables
    (the latest outcome wins)."""
    feats, errs = feature_rows(analysed), error_rows(analysed)
    embeddings = embedding_rows(analysed, model) if model is not None else None
    good = analysed.filter(F.col("error").isNull()).select("track_id", "values", "tempo")
    keys = ["track_id", "feature_version"]
    feats_loc, errs_loc = settings.lake_table("features"), settings.lake_table("extract_errors")
    emb_loc = settings.lake_table("embeddings")
    uri, database, timeout = settings.mongo.uri, settings.mongo.database, settings.mongo.timeout_ms
    # One write per table (and one for Mongo), run at once: each is a small Spark job and a commit
    # on the driver, and none reads what another writes. A chunk's features are few (its tracks, 518
    # numbers each): the driver writes them to Mongo itself, in one connection, where a task per
    # partition took longer to start than to write.
    writes: list[Callable[[], object]] = [
        lambda: _mongo_features(good.collect(), uri, database, timeout, version)
    ]
    if fresh:
        writes += [lambda: delta_io.write_table(feats, feats_loc, mode="append"),
                   lambda: delta_io.write_table(errs, errs_loc, mode="append")]  # fmt: skip
        if embeddings is not None:
            writes.append(lambda: delta_io.write_table(embeddings, emb_loc, mode="append"))
    else:

        def replace(rows: DataFrame, location: str, others: DataFrame) -> None:
            delta_io.merge_upsert(spark, rows, location, keys=keys)
            delta_io.delete_matching(spark, location, others.select(*keys), keys=keys)

        writes += [lambda: replace(feats, feats_loc, errs), lambda: replace(errs, errs_loc, feats)]
        if embeddings is not None:
            writes.append(lambda: replace(embeddings, emb_loc, errs))
        else:
            writes.append(lambda: delta_io.delete_matching(spark, emb_loc, errs.select(*keys), keys=keys))
    with ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="extract-write") as pool:
        for done in [pool.submit(write) for write in writes]:
            done.result()  # the first failure is raised, after every write has ended


def _mongo_features(rows, uri: str, database: str, timeout_ms: int, version: str) -> None:
    """``$set`` the features of a chunk's tracks (rows of ``track_id``, ``values``, ``tempo``) on their Mongo
    documents.

    The 518 values travel as one float32 blob (``udfs.schema.vector_to_bytes``): FerretDB
    writes a document of 518 named numbers about 18x slower. A few named summaries
    (tempo, energy, brightness) stay readable for the dashboard and client apps.
    """
    from bson.binary import Binary

    docs = []
    for r in rows:
        named = {**dict(zip(FEATURE_COLUMNS, r["values"], strict=True)), "tempo": r["tempo"]}
        docs.append({"_id": int(r["track_id"]), "features": mongo_features(named, version=version, binary=Binary)})
    if docs:
        with mongo_io.connect_uri(uri, timeout_ms=timeout_ms) as client:
            mongo_io.set_fields_many(client[database], "tracks", docs)


def mongo_features(row: dict, *, version: str, binary=bytes) -> dict:
    """The ``features`` subdocument of a Mongo ``tracks`` document, from a features row."""
    return {
        "version": version,
        "vector": binary(vector_to_bytes([row[name] for name in FEATURE_COLUMNS])),
        **{axis: row.get(column) for axis, column in MOOD_AXES.items()},
        "at": datetime.now(UTC),
    }
