"""File listings through Spark and Hadoop's FileSystem: local disks, HDFS and S3 alike.

Spark's file scans produce no row for a 0-byte file (it has no split), so a
listing built from ``binaryFile`` rows alone misses empty files; the file
index (``inputFiles()``) and :func:`stat` still see them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conf.settings import local_path
from connectors.fma import AUDIO_EXTENSIONS

# Any case of each suffix (``.mp3``, ``.MP3``, ``.Mp3``): a file name filter, in Hadoop's glob syntax.
AUDIO_GLOB = "*.{" + ",".join("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in e)
                              for e in AUDIO_EXTENSIONS) + "}"  # fmt: skip


GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


def literal(path: str) -> str:
    """``path`` with its glob characters escaped: Spark expands a path with one as a pattern, and music is full of
    them (``Song [Live].flac``, ``Albums [FLAC]/``, ``Why?.mp3``). (Spark's option to take paths as they are,
    ``__globPaths__``, lists every path once for each path with such a character.) On the local file system a
    fully escaped path is looked up as it is (``FastLocalFileSystem.globStatus``): Hadoop's own pattern walk
    reads a name with a colon (``Bach: Goldberg Variations``) as a scheme."""
    return GLOB_CHARS.sub(r"\\\1", path)


def binary_files(spark: SparkSession, paths: Iterable[str], *, recursive: bool = False) -> DataFrame:
    """``binaryFile`` rows (path, modificationTime, length, content) of these files or folders, each path taken
    literally (:func:`literal`); ``recursive``: every audio file under the folders."""
    reader = spark.read.format("binaryFile")
    if recursive:
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", AUDIO_GLOB)
    return reader.load([literal(p) for p in paths])


def max_read_bytes(spark: SparkSession) -> int:
    """The largest file Spark's ``binaryFile`` source reads into one value (``spark.sql.sources.binaryFile.maxLength``,
    2 GiB by default): a larger one fails the whole read, so the jobs leave its content unread."""
    return int(spark.conf.get("spark.sql.sources.binaryFile.maxLength", str(2**31 - 1)))


def hidden_from_spark(path: str) -> bool:
    """Whether Spark's listing of a folder passes over ``path`` (under that folder): a file or folder on it whose
    name starts with ``_`` (Spark takes such names for its own metadata, with no option to read them)."""
    return any(part.startswith("_") for part in path.removeprefix("file:").split("/") if part)


def skipped_by_spark(folder: str) -> list[str]:
    """The audio files under a local ``folder`` that Spark's listing passes over (:func:`hidden_from_spark`), as
    ``file:`` paths in the form Spark's own rows have; dot-names are left out as Spark leaves them out
    (``._song.mp3`` is a Mac's resource fork, not audio), and so are names that are not UTF-8
    (:func:`not_utf8`). A folder that is not on the local disk gives []."""
    local = local_path(folder)
    if local is None:
        return []
    root = Path(os.path.abspath(local))
    return [f"file:{p}" for p in _local_audio(root) if is_utf8(p) and hidden_from_spark(str(p.relative_to(root)))]


def not_utf8(folder: str) -> list[str]:
    """The audio files under a local ``folder`` whose path is not valid UTF-8 (a library copied from an old
    Windows or FAT disk: ``caf\\xe9.mp3`` in Latin-1), shown with the odd bytes escaped. Neither Spark nor the
    stores can name such a file (Java reads the bytes as another name, and no file has it), so the jobs
    cannot catalogue it: ingest says which they are. A folder that is not on the local disk gives []."""
    local = local_path(folder)
    if local is None:
        return []
    return [os.fsencode(p).decode("utf-8", "backslashreplace") for p in _local_audio(Path(os.path.abspath(local)))
            if not is_utf8(p)]  # fmt: skip


def is_utf8(path: Path | str) -> bool:
    """Whether a name Python read from the disk is UTF-8 (its undecodable bytes are kept as lone surrogates)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _local_audio(root: Path) -> list[Path]:
    """Every audio file under ``root`` by its suffix (any case), dot-names left out, in a stable order."""
    suffixes = {f".{e}" for e in AUDIO_EXTENSIONS}
    found = []
    for here, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(here) / n for n in sorted(names) if not n.startswith(".") and Path(n).suffix.lower() in suffixes]
    return found


def _fs_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Hadoop's FileSystem has no Python API
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath, hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # noqa: SLF001


def stat(spark: SparkSession, paths: Iterable[str]) -> dict[str, tuple[int, datetime] | None]:
    """Size and modification time of each path, or None where it does not exist."""
    out: dict[str, tuple[int, datetime] | None] = {}
    for path in paths:
        hpath, fs = _fs_path(spark, path)
        if not fs.exists(hpath):
            out[path] = None
            continue
        status = fs.getFileStatus(hpath)
        out[path] = (int(status.getLen()), datetime.fromtimestamp(status.getModificationTime() / 1000, tz=UTC))
    return out


def existing(spark: SparkSession, paths: Iterable[str]) -> list[str]:
    return [p for p, s in stat(spark, paths).items() if s is not None]


def list_audio(spark: SparkSession, roots: list[str]) -> tuple[DataFrame, set[str]]:
    """Audio files under ``roots``: (rows of path, size, mtime read without content; every path, empty ones too)."""
    if not roots:
        empty = spark.createDataFrame([], "path string, length long, modificationTime timestamp")
        return empty, set()
    df = binary_files(spark, roots, recursive=True)
    listed = df.select("path", "length", "modificationTime")
    hidden = sorted({p for root in roots for p in skipped_by_spark(root)})  # read by the jobs themselves
    if hidden:
        stats = [(p, os.stat(local_path(p) or p)) for p in hidden]
        extra = [(p, s.st_size, datetime.fromtimestamp(s.st_mtime_ns // 1_000_000 / 1000, tz=UTC)) for p, s in stats]
        schema = "path string, length long, modificationTime timestamp"
        listed = listed.unionByName(spark.createDataFrame(extra, schema)).dropDuplicates(["path"])
    return listed, {same_form(p) for p in df.inputFiles()} | set(hidden)


def same_form(uri: str) -> str:
    """The form binaryFile's ``path`` column uses (``file:/x``), for ``inputFiles()``'s ``file:///x``."""
    return re.sub(r"^file:/+", "file:/", uri)


def parent(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[0]


def with_parents(df: DataFrame, column: str) -> list[str]:
    """Distinct parent folders of the paths in ``column``."""
    return [r.d for r in df.select(F.regexp_replace(column, "/[^/]+$", "").alias("d")).distinct().collect()]
