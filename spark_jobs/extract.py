"""extract: audio features for every catalogued track, incrementally, into Delta and MongoDB.

Reads the catalogue (Delta ``tracks``), fingerprints each audio file by size
and modification time (a ``binaryFile`` listing that reads no content), and
extracts only the tracks whose fingerprint has no outcome yet for this
feature version: a second run over an unchanged library extracts nothing, a
changed file is extracted again. The audio itself is read with ``binaryFile``
(local disk, HDFS and S3 alike) and analysed by an iterator pandas UDF that
decodes each track once and computes the FMA-compatible set.

Work goes in chunks, each committed before the next (a crash loses at most a
chunk) and logged with progress. Good rows are MERGEd into ``features``
(key: track_id, feature_version) and ``$set`` on the Mongo ``tracks``
document as ``features``; failures are MERGEd into ``extract_errors`` with a
readable reason. The latest outcome of a track wins: a fixed file clears its
error row, a file that broke loses its stale features.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conf.settings import Settings
from spark_jobs import delta_io, files, mongo_io
from spark_jobs.errors import JobInputError
from spark_jobs.services import require_mongo
from spark_jobs.session import build_spark
from udfs.pandas_udfs import make_analyse_udf
from udfs.schema import FEATURE_COLUMNS, vector_to_bytes

log = logging.getLogger("earshot.extract")

FINGERPRINT = ["track_id", "source_size", "source_mtime"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-version", help="default: extract.feature_version")
    parser.add_argument("--chunk-tracks", type=int, default=256, help="tracks per committed chunk")
    parser.add_argument("--limit", type=int, default=0, help="extract at most this many tracks (0: all)")
    parser.add_argument(
        "--retry-errors",
        action="store_true",
        help="analyse again the tracks with an error row (after raising extract.track_time_limit_s, say)",
    )


def pending(
    spark: SparkSession, settings: Settings, version: str, *, retry_errors: bool = False
) -> tuple[DataFrame, DataFrame]:
    """(tracks to analyse with their fingerprint, tracks that cannot be: no file, or an empty one).

    The second frame has the error columns' shape, with a reason per track. With
    ``retry_errors`` a track whose outcome is an error row counts as not done. With an
    embedding on (``extract.embedding``), a track's good outcome is its embedding row: tracks
    extracted before the embedding existed are analysed again, once.
    """
    tracks_loc = settings.lake_table("tracks")
    if not delta_io.table_exists(spark, tracks_loc):
        raise JobInputError(f"no catalogue at {tracks_loc}; run ./spark-submit.sh ingest first")
    tracks = delta_io.read_table(spark, tracks_loc)
    if "gone" in tracks.columns:  # a track whose file was removed from its folder is not analysed again
        tracks = tracks.filter(~F.coalesce(F.col("gone"), F.lit(False)))
    tracks = tracks.select("track_id", "audio_path").cache()
    located = tracks.filter(F.col("audio_path").isNotNull())
    folders = files.existing(spark, files.with_parents(located, "audio_path"))
    rows, all_paths = files.list_audio(spark, folders)
    listing = rows.select(
        F.col("path").alias("audio_path"),
        F.col("length").alias("source_size"),
        F.col("modificationTime").alias("source_mtime"),
    )
    present = located.join(listing, "audio_path")
    # Files the scan gave no row for: empty (the index has them) or gone.
    unlisted = [r.audio_path for r in located.join(listing, "audio_path", "left_anti").collect()]
    status = files.stat(spark, [p for p in unlisted if p in all_paths])
    blanks = [
        (p, status[p][0], status[p][1], "empty file (0 bytes)")
        if status.get(p)
        else (p, None, None, "audio file missing: catalogued path does not exist")
        for p in unlisted
    ]
    blank_df = spark.createDataFrame(
        blanks, "audio_path string, source_size long, source_mtime timestamp, reason string"
    )
    unusable = tracks.join(blank_df, "audio_path").unionByName(
        tracks.filter(F.col("audio_path").isNull())
        .withColumn("source_size", F.lit(None).cast("long"))
        .withColumn("source_mtime", F.lit(None).cast("timestamp"))
        .withColumn("reason", F.lit("audio file missing: no file for this track under the audio root"))
    )
    good = "embeddings" if settings.extract.embedding != "none" else "features"
    done = outcomes(spark, settings, version, tables=(good,) if retry_errors else (good, "extract_errors"))
    if done is not None:
        present = without_outcome(present, done)
        unusable = without_outcome(unusable, done)
    return present, unusable


def without_outcome(rows: DataFrame, done: DataFrame) -> DataFrame:
    """Rows whose fingerprint has no outcome yet (null-safe: a missing file has no size)."""
    d = done.select(*[F.col(c).alias(f"_done_{c}") for c in FINGERPRINT])
    cond = [rows[c].eqNullSafe(d[f"_done_{c}"]) for c in FINGERPRINT]
    return rows.join(d, cond, "left_anti")


OUTCOME_TABLES = ("features", "extract_errors")


def outcomes(
    spark: SparkSession, settings: Settings, version: str, *, tables: tuple[str, ...] = OUTCOME_TABLES
) -> DataFrame | None:
    """Fingerprints that already have an outcome (features or error, or those of ``tables``) for ``version``."""
    frames = []
    for name in tables:
        loc = settings.lake_table(name)
        if delta_io.table_exists(spark, loc):
            frames.append(
                delta_io.read_table(spark, loc).filter(F.col("feature_version") == version).select(*FINGERPRINT)
            )
    if not frames:
        return None
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


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


def tracks_with_outcome(spark: SparkSession, settings: Settings, version: str) -> set[int]:
    done = outcomes(spark, settings, version)
    return set() if done is None else {r.track_id for r in done.select("track_id").distinct().collect()}


def _mongo_features(rows, uri: str, database: str, timeout_ms: int, version: str) -> None:
    """Executor side: ``$set`` the features of a partition's tracks on their Mongo documents.

    The 518 values travel as one float32 blob (``udfs.schema.vector_to_bytes``): FerretDB
    writes a document of 518 named numbers about 18x slower. A few named summaries
    (tempo, energy, brightness) stay readable for the dashboard and client apps.
    """
    from bson.binary import Binary
    from pymongo import MongoClient

    docs = []
    for r in rows:
        d = r.asDict()
        docs.append({"_id": int(d["track_id"]), "features": mongo_features(d, version=version, binary=Binary)})
    if docs:
        with MongoClient(uri, serverSelectionTimeoutMS=timeout_ms) as client:
            mongo_io.set_fields_many(client[database], "tracks", docs)


def mongo_features(row: dict, *, version: str, binary=bytes) -> dict:
    """The ``features`` subdocument of a Mongo ``tracks`` document, from a features row."""
    return {
        "version": version,
        "vector": binary(vector_to_bytes([row[name] for name in FEATURE_COLUMNS])),
        "tempo": row.get("tempo"),
        "energy": row["rmse_mean_01"],
        "brightness": row["spectral_centroid_mean_01"],
        "noisiness": row["zcr_mean_01"],
        "at": datetime.now(UTC),
    }


def record_unusable(spark: SparkSession, settings: Settings, unusable: DataFrame, *, version: str) -> int:
    rows = unusable.select(
        "track_id",
        F.lit(version).alias("feature_version"),
        F.col("audio_path").alias("path"),
        "reason",
        "source_size",
        "source_mtime",
        F.current_timestamp().alias("failed_at"),
    ).cache()
    n = rows.count()
    if n:
        keys = ["track_id", "feature_version"]
        delta_io.merge_upsert(spark, rows, settings.lake_table("extract_errors"), keys=keys)
        delta_io.delete_matching(spark, settings.lake_table("features"), rows.select(*keys), keys=keys)
        delta_io.delete_matching(spark, settings.lake_table("embeddings"), rows.select(*keys), keys=keys)
    return n


def main(settings: Settings, args: argparse.Namespace) -> int:
    require_mongo(settings)
    version = args.feature_version or settings.extract.feature_version
    spark = build_spark(settings, app_name="extract")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(settings.extract.batch_size))
    todo, unusable = pending(spark, settings, version, retry_errors=args.retry_errors)
    n_missing = record_unusable(spark, settings, unusable, version=version)
    todo_rows = todo.orderBy("track_id").collect()
    if args.limit:
        todo_rows = todo_rows[: args.limit]
    total = len(todo_rows)
    seen = tracks_with_outcome(spark, settings, version)
    weights = embedding_weights(settings)
    log.info("extract %s: %d tracks to analyse, %d missing or empty recorded", version, total, n_missing)
    started, done, n_errors = time.perf_counter(), 0, 0
    for i in range(0, total, args.chunk_tracks):
        rows = todo_rows[i : i + args.chunk_tracks]
        chunk = spark.createDataFrame(rows, schema=todo.schema)
        analysed = analyse_chunk(spark, settings, chunk, version=version, weights=weights).persist()
        feats, errs = feature_rows(analysed), error_rows(analysed)
        embeddings = embedding_rows(analysed, settings.extract.embedding) if weights is not None else None
        n_chunk, n_err = analysed.count(), errs.count()
        fresh = not any(r.track_id in seen for r in rows)
        write_outcomes(spark, settings, feats, errs, version=version, fresh=fresh, embeddings=embeddings)
        analysed.unpersist()
        done, n_errors = done + n_chunk, n_errors + n_err
        rate = done / max(time.perf_counter() - started, 1e-9)
        log.info(
            "extract: %d/%d tracks (%.0f%%), %.2f tracks/s, %d errors", done, total, 100 * done / total, rate, n_errors
        )
    print(  # noqa: T201 - command-line output
        f"extract: {done} tracks analysed ({done - n_errors} with features, {n_errors} errors), "
        f"{n_missing} missing or empty files recorded, in {time.perf_counter() - started:.1f} s"
    )
    return 0
