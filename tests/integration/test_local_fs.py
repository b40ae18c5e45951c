"""Hadoop's local file system as the local masters run it (``services/spark/localfs``), through Spark's own JVM.

A RocksDB table file copied within one local disk becomes a hard link (the state store's SST files into the
checkpoint and back), replacing what was there and its checksum file; any other file, a folder, or a copy
across devices is still Hadoop's copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark

FAST = "earshot.hadoop.FastLocalFileSystem"


@pytest.fixture()
def local_fs(spark):
    jvm = spark._jvm
    fs = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI("file:///"), spark._jsc.hadoopConfiguration())
    if fs.getClass().getName() != FAST:
        pytest.skip("setup built no local file system here (no javac): Hadoop's own copies")
    return fs, jvm.org.apache.hadoop.fs.Path


def _read_through(spark, fs, path_class, path: Path) -> bytes:
    """The file's bytes as Hadoop's checksummed reader returns them (it checks a .crc file where one exists)."""
    stream = fs.open(path_class(str(path)))
    try:
        return bytes(spark._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def test_a_copy_within_the_disk_is_a_second_name_of_the_same_file(spark, local_fs, tmp_path):
    fs, P = local_fs
    src = tmp_path / "local" / "000123.sst"
    src.parent.mkdir()
    src.write_bytes(os.urandom(70_000))
    dst = tmp_path / "checkpoint" / "state" / "0" / "3" / "000123-uuid.sst"

    fs.copyFromLocalFile(P(str(src)), P(str(dst)))

    assert dst.stat().st_ino == src.stat().st_ino
    assert dst.read_bytes() == src.read_bytes()
    assert not (dst.parent / f".{dst.name}.crc").exists()
    assert _read_through(spark, fs, P, dst) == src.read_bytes()

    back = tmp_path / "reloaded" / "000123.sst"
    fs.copyToLocalFile(P(str(dst)), P(str(back)))
    assert back.stat().st_ino == src.stat().st_ino
    src.unlink()  # RocksDB deleting its file after a compaction leaves the checkpoint's name
    assert dst.read_bytes() == back.read_bytes() and len(dst.read_bytes()) == 70_000


def test_a_link_replaces_the_file_there_and_its_stale_checksum(spark, local_fs, tmp_path):
    fs, P = local_fs
    dst = tmp_path / "x.sst"
    fs.create(P(str(dst)), True).close()  # through Hadoop: an empty file and its .crc
    crc = tmp_path / ".x.sst.crc"
    assert crc.exists()
    src = tmp_path / "new.sst"
    src.write_bytes(b"fresh contents")

    fs.copyFromLocalFile(P(str(src)), P(str(dst)))

    assert dst.read_bytes() == b"fresh contents" and not crc.exists()
    assert _read_through(spark, fs, P, dst) == b"fresh contents"

    fs.copyFromLocalFile(P(str(dst)), P(str(dst)))  # onto itself, or onto a name of the same file
    fs.copyToLocalFile(P(str(src)), P(str(dst)))
    assert dst.read_bytes() == b"fresh contents" == src.read_bytes()


def test_other_files_and_folders_are_still_copies(local_fs, tmp_path):
    fs, P = local_fs
    (tmp_path / "MANIFEST-000005").write_bytes(b"appended to by RocksDB")
    fs.copyFromLocalFile(P(str(tmp_path / "MANIFEST-000005")), P(str(tmp_path / "up" / "MANIFEST-000005")))
    assert (tmp_path / "up" / "MANIFEST-000005").read_bytes() == b"appended to by RocksDB"
    assert (tmp_path / "up" / "MANIFEST-000005").stat().st_ino != (tmp_path / "MANIFEST-000005").stat().st_ino
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a").write_bytes(b"A")
    fs.copyFromLocalFile(P(str(folder)), P(str(tmp_path / "copied")))
    assert (tmp_path / "copied" / "a").read_bytes() == b"A"
    assert (tmp_path / "copied" / "a").stat().st_ino != (folder / "a").stat().st_ino


def test_a_table_file_from_another_device_is_copied(local_fs, tmp_path):
    fs, P = local_fs
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system here to copy across")
    src = shm / f"earshot-test-{os.getpid()}.sst"
    src.write_bytes(b"other device")
    try:
        fs.copyFromLocalFile(P(str(src)), P(str(tmp_path / "across.sst")))
        assert (tmp_path / "across.sst").read_bytes() == b"other device"
        assert (tmp_path / "across.sst").stat().st_dev != src.stat().st_dev
    finally:
        src.unlink()


def test_a_stateful_query_commits_linked_table_files_and_restarts_from_them(spark, local_fs, tmp_path):
    """The state store through the links end to end: without changelog checkpointing every commit uploads
    the store's whole checkpoint (its table files by copyFromLocalFile), and a new run of the query loads
    them back (copyToLocalFile) before it counts on."""
    changelog = "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled"
    before = spark.conf.get(changelog, None)
    spark.conf.set(changelog, "false")
    source, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    source.mkdir()

    def counts_after(lines: str, name: str) -> dict[str, int]:
        (source / name).write_text(lines)
        seen: dict[str, int] = {}
        query = (
            spark.readStream.schema("k string").json(str(source)).groupBy("k").count()
            .writeStream.outputMode("update").option("checkpointLocation", str(checkpoint))
            .foreachBatch(lambda batch, _: seen.update({r["k"]: r["count"] for r in batch.collect()}))
            .trigger(availableNow=True).start()
        )  # fmt: skip
        assert query.awaitTermination(180), "the query did not finish its available input"
        return seen

    try:
        assert counts_after('{"k": "a"}\n{"k": "b"}\n{"k": "a"}\n', "1.json") == {"a": 2, "b": 1}
        tables = list((checkpoint / "state").rglob("*.sst"))
        assert tables, "the commit uploaded no table file"
        assert not list((checkpoint / "state").rglob(".*.sst.crc")), "a table file was copied, not linked"
        assert counts_after('{"k": "a"}\n{"k": "c"}\n', "2.json") == {"a": 3, "c": 1}
    finally:
        if before is None:
            spark.conf.unset(changelog)
        else:
            spark.conf.set(changelog, before)
