"""A batch that keeps failing: find it in the checkpoint, say where it is, and quarantine it on request.

Structured Streaming writes ``offsets/<N>`` (where batch N ends in each Kafka
partition) before it runs batch N, and ``commits/<N>`` after. A batch with an
offsets file and no commit is the one a restart replays. If it fails for a
reason no rule foresaw, every restart fails the same way; ``stream
--skip-poison`` then sends that batch's messages to the dead-letter topic (with
the reason :attr:`Quarantine.reason`) instead of applying them, and the stream
goes on. State is never deleted: the messages stay in the dead-letter topic,
with their partition and offset, to replay or inspect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from conf.errors import JobInputError


@dataclass(frozen=True)
class Quarantine:
    """The messages of one uncommitted batch: offsets below ``ends`` in each partition of ``topic``."""

    batch_id: int
    topic: str
    starts: dict[int, int]
    ends: dict[int, int]

    def holds(self, partition: int, offset: int) -> bool:
        end = self.ends.get(int(partition))
        return end is not None and int(offset) < end

    @property
    def reason(self) -> str:
        return f"quarantined by stream --skip-poison: batch {self.batch_id} failed before and was skipped"

    def describe(self) -> str:
        parts = ", ".join(
            f"partition {p} offsets {self.starts.get(p, 0)}-{self.ends[p] - 1}"
            for p in sorted(self.ends)
            if self.ends[p] > self.starts.get(p, 0)
        )
        return f"batch {self.batch_id} of {self.topic} ({parts or 'no messages'})"


def pending_batch(checkpoint: str, topic: str) -> Quarantine | None:
    """The batch that ``checkpoint`` started and did not commit, or None when every batch is committed."""
    root = _local(checkpoint)
    offsets = _batch_files(root / "offsets")
    if not offsets:
        return None
    last = max(offsets)
    if last in _batch_files(root / "commits"):
        return None
    ends = _kafka_offsets(offsets[last], topic)
    starts = _kafka_offsets(offsets[last - 1], topic) if last - 1 in offsets else {}
    return Quarantine(batch_id=last, topic=topic, starts=starts, ends=ends)


def check_files(checkpoint: str) -> None:
    """Refuse, with the path and what to do, a checkpoint whose files a restart would read and cannot.

    Spark reads ``metadata``, the newest two ``offsets`` files and the newest ``commits`` file
    when a query starts; a truncated one (a full disk, a copy cut short) would fail the start
    with a parser's stack trace, or worse. A remote checkpoint is left to Spark.
    """
    if "://" in checkpoint and not checkpoint.startswith("file://"):
        return
    root = Path(checkpoint.removeprefix("file://"))
    offsets, commits = _batch_files(root / "offsets"), _batch_files(root / "commits")
    newest = [offsets[n] for n in sorted(offsets)[-2:]] + [commits[n] for n in sorted(commits)[-1:]]
    if (root / "metadata").exists():
        _check_json_lines(root / "metadata", root, header=False)
    last = max(offsets, default=None)
    for path in newest:
        _check_json_lines(path, root, header=True, batch=int(path.name) if int(path.name) == last else None)


def _check_json_lines(path: Path, root: Path, *, header: bool, batch: int | None = None) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        body = lines[1:] if header else lines
        if header and (not lines or lines[0] != "v1"):
            raise ValueError("its first line is not the format version v1")
        if not body:
            raise ValueError("it is empty")
        for line in body:
            json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        what = (
            f"it belongs to the newest batch: move offsets/{batch} and commits/{batch} (where it exists) out of the "
            f"checkpoint and start again, and Spark runs batch {batch} again from the state before it (its writes "
            "replace documents, so nothing is applied twice)"
            if batch is not None
            else f"restore {root} from a backup"
        )
        raise JobInputError(
            f"checkpoint file {path} is corrupt ({exc}); {what}. Moving the whole checkpoint away starts over "
            "and loses every listener's taste built from events no longer in Kafka"
        ) from None


def has_started(checkpoint: str) -> bool:
    """Whether the checkpoint has started any batch (a remote one is taken as started)."""
    if "://" in checkpoint and not checkpoint.startswith("file://"):
        return True
    return bool(_batch_files(Path(checkpoint.removeprefix("file://")) / "offsets"))


def _local(checkpoint: str) -> Path:
    if "://" in checkpoint and not checkpoint.startswith("file://"):
        raise JobInputError(
            f"--skip-poison reads the checkpoint's offsets from a local or mounted path; {checkpoint} is not one"
        )
    return Path(checkpoint.removeprefix("file://"))


def _batch_files(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    return {int(p.name): p for p in folder.iterdir() if p.name.isdigit()}


def _kafka_offsets(path: Path, topic: str) -> dict[int, int]:
    """The end offsets per partition of ``topic`` in one offsets file (``v1``, metadata, one line per source)."""
    for line in path.read_text().splitlines()[2:]:
        try:
            source = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(source, dict) and isinstance(source.get(topic), dict):
            return {int(p): int(o) for p, o in source[topic].items()}
    raise JobInputError(f"{path} names no offsets of topic {topic}; is this the recommender's checkpoint?")
