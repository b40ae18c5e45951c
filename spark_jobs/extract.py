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

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conf.errors import JobInputError
from conf.settings import Settings
from connectors import delta_io, files
from connectors.services import require_mongo
from spark_jobs.extract_chunk import (
    analyse_chunk,
    embedding_weights,
    write_outcomes,
)
from spark_jobs.progress import Progress
from spark_jobs.session import build_spark

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
    limit = files.max_read_bytes(spark)
    too_large = present.filter(F.col("source_size") > limit).withColumn(
        "reason", F.lit(f"file too large to analyse: over {limit:,} bytes, the most Spark reads into one value")
    )
    present = present.filter(F.col("source_size") <= limit)
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
    unusable = tracks.join(blank_df, "audio_path").unionByName(too_large).unionByName(
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


def tracks_with_outcome(spark: SparkSession, settings: Settings, version: str) -> set[int]:
    done = outcomes(spark, settings, version)
    return set() if done is None else {r.track_id for r in done.select("track_id").distinct().collect()}


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
    todo, unusable = pending(spark, settings, version, retry_errors=args.retry_errors)
    n_missing = record_unusable(spark, settings, unusable, version=version)
    todo_rows = todo.orderBy("track_id").collect()
    if args.limit:
        todo_rows = todo_rows[: args.limit]
    total = len(todo_rows)
    seen = tracks_with_outcome(spark, settings, version)
    weights = embedding_weights(settings)
    log.info("extract %s: %d tracks to analyse, %d missing, empty or too large recorded", version, total, n_missing)
    started, done, n_errors = time.perf_counter(), 0, 0
    with Progress("extract", total, unit="tracks", log=log) as progress:
        for i in range(0, total, args.chunk_tracks):
            rows = todo_rows[i : i + args.chunk_tracks]
            chunk = spark.createDataFrame(rows, schema=todo.schema)
            analysed, n_chunk = analyse_chunk(spark, settings, chunk, version=version, weights=weights)
            # The analysis wants small partitions (a slow track holds up only its own); the writes want
            # few: a Parquet file and a Mongo connection per partition cost more than their rows here.
            outcome = analysed.coalesce(spark.sparkContext.defaultParallelism)
            n_err = outcome.filter(F.col("error").isNotNull()).count()
            fresh = not any(r.track_id in seen for r in rows)
            model = settings.extract.embedding if weights is not None else None
            write_outcomes(spark, settings, outcome, version=version, fresh=fresh, model=model)
            analysed.unpersist()
            done, n_errors = done + n_chunk, n_errors + n_err
            progress.advance(n_chunk, errors=n_errors)
    print(  # noqa: T201 - command-line output
        f"extract: {done} tracks analysed ({done - n_errors} with features, {n_errors} errors), "
        f"{n_missing} missing, empty or too large files recorded, in {time.perf_counter() - started:.1f} s"
    )
    return 0
