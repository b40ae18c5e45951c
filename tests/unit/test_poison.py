"""The batch that keeps failing: found in a checkpoint's offsets and commits, quarantined by offset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conf.errors import JobInputError
from spark_jobs.streaming.poison import check_files, has_started, pending_batch

pytestmark = pytest.mark.unit


def write_offsets(root: Path, batch: int, ends: dict[str, int], topic: str = "listens") -> None:
    (root / "offsets").mkdir(parents=True, exist_ok=True)
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": 0, "conf": {}}
    (root / "offsets" / str(batch)).write_text(f"v1\n{json.dumps(meta)}\n{json.dumps({topic: ends})}")


def commit(root: Path, batch: int) -> None:
    (root / "commits").mkdir(parents=True, exist_ok=True)
    (root / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def test_the_started_and_uncommitted_batch_is_the_one_to_skip(tmp_path: Path):
    write_offsets(tmp_path, 0, {"0": 10, "1": 4})
    commit(tmp_path, 0)
    write_offsets(tmp_path, 1, {"0": 25, "1": 4})
    q = pending_batch(str(tmp_path), "listens")
    assert q is not None and q.batch_id == 1
    assert q.holds(0, 24) and q.holds(1, 3) and not q.holds(0, 25) and not q.holds(2, 0)
    assert "partition 0 offsets 10-24" in q.describe() and "partition 1" not in q.describe()
    assert "--skip-poison" in q.reason


def test_nothing_to_skip_when_every_batch_is_committed(tmp_path: Path):
    assert pending_batch(str(tmp_path), "listens") is None
    write_offsets(tmp_path, 0, {"0": 10})
    commit(tmp_path, 0)
    assert pending_batch(f"file://{tmp_path}", "listens") is None


def test_another_querys_checkpoint_is_named_in_the_error(tmp_path: Path):
    write_offsets(tmp_path, 0, {"0": 10}, topic="other")
    with pytest.raises(JobInputError, match="names no offsets of topic listens"):
        pending_batch(str(tmp_path), "listens")


def test_a_remote_checkpoint_is_refused_with_a_reason():
    with pytest.raises(JobInputError, match="local or mounted path"):
        pending_batch("s3a://bucket/checkpoints/recommender", "listens")


def test_a_checkpoint_has_started_once_it_has_an_offsets_file(tmp_path: Path):
    assert not has_started(str(tmp_path))
    write_offsets(tmp_path, 0, {"0": 1})
    assert has_started(str(tmp_path)) and has_started(f"file://{tmp_path}")
    assert has_started("hdfs://nn/checkpoints/recommender")


def three_batches(root: Path) -> None:
    (root / "metadata").parent.mkdir(parents=True, exist_ok=True)
    (root / "metadata").write_text('{"id":"q"}')
    for b in range(3):
        write_offsets(root, b, {"0": 10 * (b + 1)})
        commit(root, b)


def test_a_sound_checkpoint_passes_the_file_check(tmp_path: Path):
    three_batches(tmp_path)
    check_files(str(tmp_path))
    check_files(str(tmp_path / "never-started"))


def test_a_truncated_newest_offsets_file_is_named_with_the_batch_to_run_again(tmp_path: Path):
    three_batches(tmp_path)
    newest = tmp_path / "offsets" / "2"
    newest.write_text(newest.read_text()[:30])
    with pytest.raises(JobInputError, match=r"offsets/2 and commits/2 \(where it exists\) out of the checkpoint") as e:
        check_files(str(tmp_path))
    assert str(newest) in str(e.value)


def test_an_older_corrupt_file_or_metadata_asks_for_the_backup(tmp_path: Path):
    three_batches(tmp_path)
    (tmp_path / "offsets" / "1").write_bytes(b"v1\n\xff\xfe")
    with pytest.raises(JobInputError, match="restore .* from a backup"):
        check_files(str(tmp_path))
    three_batches(tmp_path)
    (tmp_path / "metadata").write_text("")
    with pytest.raises(JobInputError, match=r"metadata is corrupt \(it is empty\)"):
        check_files(str(tmp_path))
