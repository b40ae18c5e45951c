"""ingest: the catalogue, from FMA metadata or any folder of music, into Delta and MongoDB.

FMA mode (default) reads ``tracks.csv`` and ``genres.csv``, keeps one subset
(small, medium or large; small is in medium, medium in large), and finds each
track's audio by listing the audio root with Spark's ``binaryFile`` source
(``<root>/<3 digits>/<6 digits>.<ext>``; a track whose file is missing keeps a
null ``audio_path`` and extract records it). Folder mode (``--folder``) takes
every audio file under a folder and reads its tags with mutagen, falling back
to the folder layout (``Artist/Album/NN Title.ext``, ``Album/Title.ext``,
``Artist - Title.ext``; ``spark_jobs.folder_tags``).

A folder's track ids are hashes of each file's path under the folder, so a
library moved and ingested from its new place keeps its ids (and its
listeners' history). A file keeps the id the catalogue already gives its path;
a new file takes over the id of a catalogued file with the same relative path
whose file is gone (a library or one of its folders moved); a new file whose
id is held by a file of another folder that is still there (two folders
ingested into one lake, both with ``Unknown Artist/Unknown Album/01 Track
1.mp3``) gets the hash of its whole path instead, so neither overwrites the
other (``spark_jobs.folder_tags.track_ids``).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf.errors import JobInputError
from conf.settings import Settings, join_uri, local_path, path_argument
from connectors import delta_io, mongo_io
from connectors import files as files_mod
from connectors.fma import FmaFormatError, catalogue_from_fma, load_genres, load_tracks
from connectors.services import require_mongo
from spark_jobs import folder_playlists
from spark_jobs.folder_tags import read_tags, relative, stable_track_id, track_ids
from spark_jobs.progress import spark_tasks
from spark_jobs.session import build_spark

log = logging.getLogger("earshot.ingest")

TRACKS_SCHEMA = T.StructType(
    [
        T.StructField("track_id", T.LongType(), False),
        T.StructField("title", T.StringType()),
        T.StructField("artist_id", T.LongType()),
        T.StructField("artist_name", T.StringType()),
        T.StructField("album_title", T.StringType()),
        T.StructField("genre_top", T.StringType()),
        T.StructField("genre_ids", T.ArrayType(T.IntegerType())),
        T.StructField("genres_all", T.ArrayType(T.IntegerType())),
        T.StructField("genre_names", T.ArrayType(T.StringType())),
        T.StructField("duration_s", T.DoubleType()),
        T.StructField("listens", T.LongType()),
        T.StructField("subset", T.StringType()),
        T.StructField("track_number", T.LongType()),
        T.StructField("year", T.LongType()),
        T.StructField("recording_mbid", T.StringType()),  # the tags' MusicBrainz recording id (history import)
        T.StructField("isrc", T.StringType()),
        T.StructField("album_artist", T.StringType()),  # where the tags name one (a compilation: "Various Artists")
        T.StructField("disc_number", T.LongType()),
        *[
            T.StructField(f"replaygain_{what}", T.DoubleType())  # dB, and a peak's fraction of full scale
            for what in ("track_gain", "album_gain", "track_peak", "album_peak")
        ],
    ]
)
FMA_PATH_RE = r"/(\d{3})/(\d{6})\.(?i:mp3|ogg|flac|wav)$"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fma-metadata",
        type=path_argument,
        help="folder with tracks.csv and genres.csv (default: <library_root>/fma_metadata)",
    )
    parser.add_argument("--audio-root", type=path_argument, help="FMA audio root (default: <library_root>/audio)")
    parser.add_argument("--subset", default="large", choices=["small", "medium", "large"])
    parser.add_argument("--folder", type=path_argument, help="ingest any folder of music instead of FMA metadata")


def fma_catalogue(spark: SparkSession, metadata_dir: str, audio_root: str, subset: str) -> DataFrame:
    try:
        tracks = load_tracks(Path(metadata_dir) / "tracks.csv")
        genres = load_genres(Path(metadata_dir) / "genres.csv")
    except (FmaFormatError, FileNotFoundError) as exc:
        raise JobInputError(str(exc)) from None
    rows = catalogue_from_fma(tracks, genres, subset=subset)
    rows = rows.assign(recording_mbid=None, isrc=None, album_artist=None, disc_number=None)  # FMA has none
    rows = rows.assign(**{f.name: None for f in TRACKS_SCHEMA.fields if f.name.startswith("replaygain_")})
    if rows.empty:
        raise JobInputError(f"no tracks of subset {subset!r} in {metadata_dir}/tracks.csv")
    catalogue = spark.createDataFrame(rows, schema=TRACKS_SCHEMA)
    if not files_mod.existing(spark, [audio_root]):
        raise JobInputError(f"audio root {audio_root} does not exist; pass --audio-root")
    _, paths = files_mod.list_audio(spark, [audio_root])  # the file index: empty files too
    files = (
        spark.createDataFrame([(p,) for p in sorted(paths)], "path string")
        .withColumn("track_id", F.regexp_extract("path", FMA_PATH_RE, 2))
        .filter(F.col("track_id") != "")
        .withColumn("track_id", F.col("track_id").cast("long"))
        .groupBy("track_id")
        .agg(F.min("path").alias("audio_path"))  # one file per id, deterministically
    )
    return catalogue.join(files, "track_id", "left").withColumn("source", F.lit("fma"))


def folder_catalogue(spark: SparkSession, folder: str) -> DataFrame:
    """One catalogue row per audio file under ``folder``. On the local disk Spark only lists the files (the ones
    it passes over, named with a leading ``_``, are listed here) and mutagen reads each file's tags itself,
    seeking to what it needs (headers, an ID3v1 tail), not the whole file; elsewhere (HDFS, S3) Spark reads
    each file's bytes, except a file over its limit for one value, which would fail the whole scan (the filter
    on length is applied to each file's status before its bytes) and is catalogued from its path."""
    listing = files_mod.binary_files(spark, [folder], recursive=True)
    unread = F.lit(None).cast("binary").alias("content")
    if local_path(folder) is not None:
        hidden = spark.createDataFrame([(p,) for p in files_mod.skipped_by_spark(folder)], "path string")
        files = listing.select("path").unionByName(hidden).select("path", unread)  # a _Singles/ folder too
    else:
        limit = files_mod.max_read_bytes(spark)
        files = (
            listing.filter(F.col("length") <= limit)
            .select("path", "content")
            .unionByName(listing.filter(F.col("length") > limit).select("path", unread))
        )
    root = folder.rstrip("/")
    schema = T.StructType([*TRACKS_SCHEMA.fields, T.StructField("audio_path", T.StringType())])

    def tag_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield pd.DataFrame(
                [read_tags(p, c, root=root) for p, c in zip(batch["path"], batch["content"], strict=True)]
            )

    return files.mapInPandas(tag_batches, schema=schema).withColumn("source", F.lit("folder"))


def with_content_hash(df: DataFrame) -> DataFrame:
    """A hash of every catalogue field: the MERGE updates a row only when it changed."""
    cols = [c for c in df.columns if c != "track_id"]
    return df.withColumn("content_hash", F.sha2(F.to_json(F.struct(*[F.col(c) for c in sorted(cols)])), 256))


def changed_rows(spark: SparkSession, rows: DataFrame, location: str) -> DataFrame:
    if not delta_io.table_exists(spark, location):
        return rows
    existing = delta_io.read_table(spark, location).select("track_id", "content_hash")
    return rows.join(existing, ["track_id", "content_hash"], "left_anti")


def main(settings: Settings, args: argparse.Namespace) -> int:
    require_mongo(settings)
    spark = build_spark(settings, app_name="ingest")
    rows = None
    try:
        with spark_tasks(spark, "ingest", log=log):
            rows = with_content_hash(catalogue(spark, settings, args)).cache()
            n_total, n_changed, missing_audio = write_changes(spark, settings, rows)
        n_gone = rows.filter(F.col("gone")).count()
        if args.folder:
            library_playlists(spark, settings, args.folder)
    finally:
        # A cached plan is matched by its shape: left cached, the next ingest of the same folder in this
        # session would read this run's files again instead of listing the folder.
        if rows is not None:
            rows.unpersist()
    print(  # noqa: T201 - command-line output
        f"ingest: {n_total - n_gone} tracks in the catalogue, {n_changed} new or changed written, "
        f"{missing_audio} without an audio file, {n_gone} gone (their files were removed)"
    )
    unnamed = files_mod.not_utf8(args.folder) if args.folder else []
    if unnamed:
        shown = ", ".join(unnamed[:5]) + (f" and {len(unnamed) - 5} more" if len(unnamed) > 5 else "")
        print(  # noqa: T201 - command-line output
            f"ingest: {len(unnamed)} files not catalogued: their names are not UTF-8, which Spark cannot open; "
            f"rename them (e.g. convmv -f latin1 -t utf8 -r --notest FOLDER) and ingest again: {shown}"
        )
    return 0


def library_playlists(spark: SparkSession, settings: Settings, folder: str) -> None:
    """The folder's ``.m3u`` playlists over the catalogue's files (``spark_jobs.folder_playlists``): every folder
    ingested into it, so a playlist may name songs of another library folder."""
    if local_path(folder) is None:
        return

    def files_by_path() -> dict[str, int]:
        tracks = delta_io.read_table(spark, settings.lake_table("tracks"))
        gone = F.coalesce(F.col("gone"), F.lit(False)) if "gone" in tracks.columns else F.lit(False)
        live = tracks.filter(F.col("audio_path").isNotNull() & ~gone).select("audio_path", "track_id")
        local = {local_path(r[0]): r[1] for r in live.collect()}
        return {os.path.normpath(p): t for p, t in local.items() if p is not None}

    n, total, found = folder_playlists.write(settings, folder, files_by_path)
    if n:
        print(f"ingest: {n} playlists from the folder's .m3u files, {found} of {total} entries found")  # noqa: T201


def catalogue(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> DataFrame:
    """Every catalogue row this run writes: the FMA subset, or the folder's files and its tracks now gone."""
    if args.folder:
        files = folder_catalogue(spark, args.folder).localCheckpoint(eager=True)  # the tags read once
        present = own_ids(spark, settings, files, args.folder)
        present = present.withColumn("gone", F.lit(False))
        return present.unionByName(gone_rows(spark, settings, present, args.folder))
    metadata = args.fma_metadata or join_uri(settings.paths.library_root, "fma_metadata")
    audio_root = args.audio_root or join_uri(settings.paths.library_root, "audio")
    return fma_catalogue(spark, metadata, audio_root, args.subset).withColumn("gone", F.lit(False))


def own_ids(spark: SparkSession, settings: Settings, rows: DataFrame, folder: str) -> DataFrame:
    """``rows`` (a folder's files) with ids that are each file's own, by the module's rule
    (:func:`spark_jobs.folder_tags.track_ids`): worked out on the driver from every file's path and the
    catalogue's folder tracks (an id and a path each)."""
    location = settings.lake_table("tracks")
    if not delta_io.table_exists(spark, location):
        return rows
    known = delta_io.read_table(spark, location).filter(F.col("audio_path").isNotNull())
    known = known.filter(F.col("source") == "folder") if "source" in known.columns else known
    gone = F.col("gone") if "gone" in known.columns else F.lit(False)  # a catalogue from before the column
    catalogue = [(r[0], r[1], bool(r[2])) for r in known.select("track_id", "audio_path", gone).collect()]
    root = folder.rstrip("/")
    files = {r[0]: relative(r[0], root) for r in rows.select("audio_path").collect()}
    ids = track_ids(files, catalogue, exists=lambda path: bool(files_mod.existing(spark, [path])))
    others = [(path, tid) for path, tid in ids.items() if tid != stable_track_id(files[path])]
    if not others:
        return rows
    for path, _ in others:
        log.info("ingest: %s keeps the id of a catalogued file or takes one of its own", path)
    apart = spark.createDataFrame(others, "_path string, _own long")
    return (
        rows.join(apart, F.col("audio_path") == F.col("_path"), "left")
        .withColumn("track_id", F.coalesce("_own", "track_id"))
        .select(*rows.columns)
    )


def gone_rows(spark: SparkSession, settings: Settings, present: DataFrame, folder: str) -> DataFrame:
    """Tracks catalogued from ``folder`` before whose files are not in it now, with ``gone`` true."""
    location = settings.lake_table("tracks")
    if not delta_io.table_exists(spark, location):
        return present.limit(0)
    existing = delta_io.read_table(spark, location)
    if "gone" not in existing.columns:  # a catalogue from before the column
        existing = existing.withColumn("gone", F.lit(False))
    for field in present.schema.fields:  # columns newer than the catalogue (track_number, year): unknown
        if field.name not in existing.columns:
            existing = existing.withColumn(field.name, F.lit(None).cast(field.dataType))
    # Under the folder however it was named (``file:///music`` while the rows say ``file:/music/...``).
    local_root = local_path(folder)
    root = (os.path.abspath(local_root) if local_root is not None else folder).rstrip("/") + "/"
    local = F.regexp_replace(F.col("audio_path"), "^file:/*", "/")
    mine = existing.filter((F.col("source") == "folder") & local.startswith(root))
    removed = mine.join(present.select("track_id"), "track_id", "left_anti")
    return removed.withColumn("gone", F.lit(True)).select(*present.columns)


def write_changes(spark: SparkSession, settings: Settings, rows: DataFrame) -> tuple[int, int, int]:
    """Write the new and changed catalogue rows to Mongo and Delta; (rows, changed, without audio)."""
    location = settings.lake_table("tracks")
    # The changes are computed against the Delta table, so they are materialised once, before
    # anything is written: evaluated again after the MERGE they would come out empty, and the
    # serving store would silently miss them. Both stores are written from this one copy.
    changed = changed_rows(spark, rows, location).localCheckpoint(eager=True)
    n_total, n_changed = rows.count(), changed.count()
    if n_changed:
        docs = [tracks_document(r.asDict(recursive=True)) for r in changed.toLocalIterator()]
        # Mongo first: if the MERGE then fails, the next run finds the same changes and writes both again.
        with mongo_io.connect(settings) as client:
            mongo_io.set_fields_many(mongo_io.database(client, settings), "tracks", docs)
        delta_io.merge_upsert(spark, changed, location, keys=["track_id"], evolve=True)
    return n_total, n_changed, rows.filter(F.col("audio_path").isNull() & ~F.col("gone")).count()


def tracks_document(row: dict) -> dict:
    """The Mongo ``tracks`` document of one catalogue row (``_id`` = track id)."""
    doc = {k: v for k, v in row.items() if k not in ("track_id", "content_hash")}
    doc["_id"] = int(row["track_id"])
    return doc
