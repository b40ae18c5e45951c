"""ingest: the catalogue, from FMA metadata or any folder of music, into Delta and MongoDB.

FMA mode (default) reads ``tracks.csv`` and ``genres.csv``, keeps one subset
(small, medium or large; small is in medium, medium in large), and finds each
track's audio by listing the audio root with Spark's ``binaryFile`` source
(``<root>/<3 digits>/<6 digits>.<ext>``; a track whose file is missing keeps a
null ``audio_path`` and extract records it). Folder mode (``--folder``) takes
every audio file under a folder and reads its tags with mutagen, falling back
to the folder layout (``Artist/Album/NN Title.ext``, ``Album/Title.ext``,
``Artist - Title.ext``); its track ids are stable hashes of the relative path.

Rows go to the Delta table ``tracks`` (MERGE on ``track_id``) and the Mongo
collection ``tracks`` (``$set``, so extracted features on a document stay).
Only new or changed rows are written: a second run changes nothing.

Every row has ``gone``: in folder mode, a track catalogued from this folder
earlier whose file is no longer there is kept with ``gone`` true (its history
and features stay in the lake); extract skips it and build-index leaves it
out of the index, so it is no longer recommended or accepted in events. A file
that comes back is catalogued again with ``gone`` false.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf.errors import JobInputError
from conf.settings import Settings, is_uri, join_uri, path_argument
from connectors import delta_io, mongo_io
from connectors import files as files_mod
from connectors.fma import FmaFormatError, catalogue_from_fma, load_genres, load_tracks
from connectors.services import require_mongo
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
    if files_mod.local_file(folder) is not None:
        hidden = spark.createDataFrame([(p,) for p in files_mod.skipped_by_spark(folder)], "path string")
        files = listing.select("path").unionByName(hidden).select("path", unread)  # a _Singles/ folder too
    else:
        limit = files_mod.max_read_bytes(spark)
        files = listing.filter(F.col("length") <= limit).select("path", "content").unionByName(
            listing.filter(F.col("length") > limit).select("path", unread)
        )
    root = folder.rstrip("/")
    schema = T.StructType([*TRACKS_SCHEMA.fields, T.StructField("audio_path", T.StringType())])

    def tag_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield pd.DataFrame(
                [read_tags(p, c, root=root) for p, c in zip(batch["path"], batch["content"], strict=True)]
            )

    return files.mapInPandas(tag_batches, schema=schema).withColumn("source", F.lit("folder"))


def stable_track_id(relative_path: str) -> int:
    """A positive 62-bit id from a path relative to the library folder: stable across runs."""
    return int.from_bytes(hashlib.sha1(relative_path.encode()).digest()[:8], "big") >> 2


LEADING_NUMBER = re.compile(r"^\s*(\d{1,3})\s*(?:[-.)_]\s*|\s+)(?=\S)")


def leading_int(text: str | None) -> int | None:
    """The number a tag or file name starts with ("3/12" -> 3, "2012-12-15" -> 2012, "03 Title" -> 3)."""
    found = re.match(r"\s*(\d{1,4})", text or "")
    return int(found.group(1)) if found else None


def layout_guess(rel: str) -> dict[str, str | None]:
    """Artist, album and title from a path relative to the library folder, for files without tags.

    ``Artist/Album/NN Title.ext`` gives all three (the track number is dropped from the title),
    ``Album/Title.ext`` the album, and a bare ``Artist - Title.ext`` file name the artist.
    Deeper paths use their last two folders.
    """
    parts = [p for p in rel.split("/") if p]
    stem = parts[-1].rsplit(".", 1)[0] if parts else rel
    folders = parts[:-1]
    title = LEADING_NUMBER.sub("", stem) or stem
    artist, album = None, None
    if len(folders) >= 2:
        artist, album = folders[-2], folders[-1]
    elif len(folders) == 1:
        album = folders[0]
    guess_artist, sep, guess_title = title.partition(" - ")
    if sep and guess_title:
        artist, title = artist or guess_artist, guess_title
    return {"artist": artist, "album": album, "title": title}


# Each catalogue tag under mutagen's easy name (MP3's ID3, Vorbis comments, FLAC, MP4), then what the formats
# without easy names call it: ASF (.wma) and ID3 frames outside MP3 (AIFF, WAV).
TAG_NAMES = {
    "title": ("title", "Title", "TIT2"),
    "artist": ("artist", "Author", "TPE1"),
    "album": ("album", "WM/AlbumTitle", "TALB"),
    "genre": ("genre", "WM/Genre", "TCON"),
    "tracknumber": ("tracknumber", "WM/TrackNumber", "TRCK"),
    "date": ("date", "WM/Year", "TDRC", "TYER"),
    "musicbrainz_trackid": ("musicbrainz_trackid", "MusicBrainz/Track Id", "UFID:http://musicbrainz.org"),
    "isrc": ("isrc", "WM/ISRC", "TSRC"),
    "albumartist": ("albumartist", "WM/AlbumArtist", "TPE2"),
    "discnumber": ("discnumber", "WM/PartOfSet", "TPOS"),
    "compilation": ("compilation", "WM/IsCompilation", "TCMP"),
}
VARIOUS = "Various Artists"  # a compilation's album artist when its tags name none


def tag_text(value: object) -> str:
    """One tag value as text: the first of a list, an ID3 frame's first text (a UFID's data), bytes as UTF-8."""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    text = getattr(value, "text", None)
    if isinstance(text, list):
        value = text[0] if text else ""
    elif getattr(value, "data", None) is not None and not isinstance(value, bytes):
        value = value.data
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def file_tags(audio) -> dict[str, str]:
    """The catalogue's tags of a mutagen file, by :data:`TAG_NAMES`; a key absent or blank is left out."""
    found: dict[str, str] = {}
    tags = getattr(audio, "tags", None)
    if not tags:
        return found
    for key, names in TAG_NAMES.items():
        for name in names:
            try:
                value = tags.get(name) if hasattr(tags, "get") else None
            except (KeyError, ValueError):  # an easy-tag wrapper refuses a name it does not map
                value = None
            text = tag_text(value) if value else ""
            if text:
                found[key] = text
                break
    return found


def _mp4_compilation(tags, key: str) -> list[str]:
    if not tags.get("cpil"):
        raise KeyError(key)
    return ["1"]


def is_compilation(flag: str | None) -> bool:
    """A compilation flag's value (ID3 TCMP, a Vorbis comment, iTunes' cpil) as a yes."""
    return (flag or "").strip().lower() in ("1", "true", "yes")


def read_tags(path: str, content: bytes | None, *, root: str) -> dict:
    """Catalogue fields of one file: its tags first (mutagen), then the folder layout (:func:`layout_guess`).
    Without ``content`` mutagen reads the file itself where it is local (else the layout alone)."""
    import mutagen
    from mutagen.easymp4 import EasyMP4Tags

    if "isrc" not in EasyMP4Tags.Get:  # iTunes keeps the ISRC in a freeform atom easy MP4 tags do not name
        EasyMP4Tags.RegisterFreeformKey("isrc", "ISRC")
        EasyMP4Tags.RegisterKey("compilation", _mp4_compilation)  # and a compilation in its own atom, "cpil"
    rel = path.split(root, 1)[-1].lstrip("/") if root in path else path.rsplit("/", 1)[-1]
    guess = layout_guess(rel)
    tags: dict[str, str] = {}
    duration = None
    try:
        source = io.BytesIO(content) if content is not None else files_mod.local_file(path)
        audio = mutagen.File(source, easy=True) if source is not None else None
        if audio is not None:
            duration = float(audio.info.length) if audio.info and audio.info.length else None
            tags = file_tags(audio)
    except Exception:  # noqa: BLE001 - any unreadable tag block falls back to the folder layout
        pass
    genre = tags.get("genre")
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    number = leading_int(tags.get("tracknumber"))
    if number is None and LEADING_NUMBER.match(stem):
        number = leading_int(stem)
    year = leading_int(tags.get("date"))
    return {
        "track_id": stable_track_id(rel),
        "title": tags.get("title") or guess["title"],
        "artist_id": None,
        "artist_name": tags.get("artist") or guess["artist"] or "Unknown artist",
        "album_title": tags.get("album") or guess["album"] or "",
        "genre_top": genre,
        "genre_ids": [],
        "genres_all": [],
        "genre_names": [genre] if genre else [],
        "duration_s": duration,
        "listens": None,
        "subset": None,
        "track_number": number,
        "year": year if year and year >= 1000 else None,
        "recording_mbid": tags.get("musicbrainz_trackid", "").lower() or None,
        "isrc": tags.get("isrc", "").replace("-", "").upper() or None,
        "album_artist": tags.get("albumartist") or (VARIOUS if is_compilation(tags.get("compilation")) else None),
        "disc_number": leading_int(tags.get("discnumber")),
        "audio_path": path,
    }


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
    if args.folder:
        rows = folder_catalogue(spark, args.folder).withColumn("gone", F.lit(False))
        rows = rows.unionByName(gone_rows(spark, settings, rows, args.folder))
    else:
        metadata = args.fma_metadata or join_uri(settings.paths.library_root, "fma_metadata")
        audio_root = args.audio_root or join_uri(settings.paths.library_root, "audio")
        rows = fma_catalogue(spark, metadata, audio_root, args.subset).withColumn("gone", F.lit(False))
    rows = with_content_hash(rows).cache()
    try:
        with spark_tasks(spark, "ingest", log=log):
            n_total, n_changed, missing_audio = write_changes(spark, settings, rows)
        n_gone = rows.filter(F.col("gone")).count()
    finally:
        # A cached plan is matched by its shape: left cached, the next ingest of the same folder in this
        # session would read this run's files again instead of listing the folder.
        rows.unpersist()
    print(  # noqa: T201 - command-line output
        f"ingest: {n_total - n_gone} tracks in the catalogue, {n_changed} new or changed written, "
        f"{missing_audio} without an audio file, {n_gone} gone (their files were removed)"
    )
    return 0


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
    root = (folder if is_uri(folder) else os.path.abspath(folder)).rstrip("/") + "/"
    mine = existing.filter((F.col("source") == "folder") & (F.instr(F.col("audio_path"), root) > 0))
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
