"""One chunk of extract: analyse its audio with the pandas UDF, split the outcome, write it.

Good rows become Delta ``features`` (and ``embeddings`` with musicnn on) and the Mongo ``tracks``
document's ``features``; failures become ``extract_errors`` rows with a readable reason. Used by
``spark_jobs.extract`` (the job) and, for the Mongo document, by ``check`` and ``import-fma-features``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conf.errors import JobInputError
from conf.settings import Settings
from connectors import delta_io, mongo_io
from udfs.pandas_udfs import make_analyse_udf
from udfs.schema import FEATURE_COLUMNS, MOOD_AXES, vector_to_bytes


def analyse_chunk(
    spark: SparkSession, settings: Settings, chunk: DataFrame, *, version: str, weights=None
) -> DataFrame:
    """Read the chunk's audio and run the UDF; one row per track with its outcome."""
    paths = [r.audio_path for r in chunk.select("audio_path").collect()]
    parts = max(1, min(len(paths), spark.sparkContext.defaultParallelism * 4))
    audio = (
        spark.read.format("binaryFile")
        .load(paths)
        .select(F.col("path").alias("audio_path"), "content")
        .repartition(parts)  # files are small: one file split would leave cores idle
    )
    analyse_audio = make_analyse_udf(
        sample_rate=settings.extract.sample_rate,
        clip_seconds=settings.extract.clip_seconds,
        numba_cache_dir=settings.paths.numba_cache_dir,
        time_limit_s=settings.extract.track_time_limit_s,
        weights=weights,
    )
    return (
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
    )


def feature_rows(analysed: DataFrame) -> DataFrame:
    values = F.col("values")
    return analysed.filter(F.col("error").isNull()).select(
        "track_id",
        "feature_version",
        *[values[i].alias(name) for i, name in enumerate(FEATURE_COLUMNS)],
        "tempo",
        F.col("audio_path").alias("source_path"),
        "source_size",
        "source_mtime",
        "source_rate",
        "channels",
        "clip_s",
        F.current_timestamp().alias("extracted_at"),
    )


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
    spark: SparkSession,
    settings: Settings,
    feats: DataFrame,
    errs: DataFrame,
    *,
    version: str,
    fresh: bool,
    embeddings: DataFrame | None = None,
) -> None:
    """Commit a chunk's outcomes. ``fresh``: no track of the chunk has an earlier outcome, so
    appending is enough; otherwise MERGE, and drop each track's row from the other tables
    (the latest outcome wins)."""
    keys = ["track_id", "feature_version"]
    feats_loc, errs_loc = settings.lake_table("features"), settings.lake_table("extract_errors")
    emb_loc = settings.lake_table("embeddings")
    if fresh:
        delta_io.write_table(feats, feats_loc, mode="append")
        delta_io.write_table(errs, errs_loc, mode="append")
        if embeddings is not None:
            delta_io.write_table(embeddings, emb_loc, mode="append")
    else:
        delta_io.merge_upsert(spark, feats, feats_loc, keys=keys)
        delta_io.merge_upsert(spark, errs, errs_loc, keys=keys)
        delta_io.delete_matching(spark, errs_loc, feats.select(*keys), keys=keys)
        delta_io.delete_matching(spark, feats_loc, errs.select(*keys), keys=keys)
        if embeddings is not None:
            delta_io.merge_upsert(spark, embeddings, emb_loc, keys=keys)
        delta_io.delete_matching(spark, emb_loc, errs.select(*keys), keys=keys)
    uri, database, timeout = settings.mongo.uri, settings.mongo.database, settings.mongo.timeout_ms
    feats.foreachPartition(lambda rows: _mongo_features(rows, uri, database, timeout, version))


def _mongo_features(rows, uri: str, database: str, timeout_ms: int, version: str) -> None:
    """Executor side: ``$set`` the features of a partition's tracks on their Mongo documents.

    The 518 values travel as one float32 blob (``udfs.schema.vector_to_bytes``): FerretDB
    writes a document of 518 named numbers about 18x slower. A few named summaries
    (tempo, energy, brightness) stay readable for the dashboard and client apps.
    """
    from bson.binary import Binary

    docs = []
    for r in rows:
        d = r.asDict()
        docs.append({"_id": int(d["track_id"]), "features": mongo_features(d, version=version, binary=Binary)})
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
