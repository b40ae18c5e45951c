"""Index versions on disk: atomic publishing, selection, and pruning.

Layout under the index root::

    <root>/<version>/manifest.json, shard-000.ann, shard-000.ids.npy, ...
    <root>/CURRENT            the published version's name

A version is built in ``<root>/.staging-<version>`` and renamed into place,
then ``CURRENT`` is replaced (``os.replace``): a reader sees the old version or
the new one, never half of one. Old versions beyond ``keep`` are removed; a
reader that still has one memory-mapped keeps working (POSIX keeps the data
until it is unmapped).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from index.manifest import MANIFEST_FILE, IndexError_

CURRENT = "CURRENT"


def new_version_name() -> str:
    """Sortable and unique enough for one builder: UTC time to the microsecond."""
    return datetime.now(UTC).strftime("v%Y%m%dT%H%M%S%fZ")


def staging_dir(root: Path, version: str) -> Path:
    path = root / f".staging-{version}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def publish(root: Path, staging: Path, version: str, *, keep: int) -> Path:
    """Move a complete staging folder into place, point CURRENT at it, prune old versions."""
    if not (staging / MANIFEST_FILE).exists():
        raise IndexError_(f"refusing to publish {staging}: no manifest (incomplete build)")
    final = root / version
    os.rename(staging, final)
    tmp = root / f".{CURRENT}.{os.getpid()}"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / CURRENT)
    prune(root, keep=keep)
    return final


def versions(root: Path) -> list[str]:
    """Published versions, oldest first."""
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_FILE).exists()
    )


def current_version(root: Path) -> str:
    try:
        name = (root / CURRENT).read_text().strip()
    except FileNotFoundError:
        raise IndexError_(f"no index published under {root}; run ./spark-submit.sh build-index") from None
    if not name:
        raise IndexError_(f"{root / CURRENT} is empty")
    return name


def resolve(root: Path, version: str | None = None) -> Path:
    """The folder of ``version`` (default: the published one), checked to exist."""
    name = version or current_version(root)
    folder = root / name
    if not (folder / MANIFEST_FILE).exists():
        known = ", ".join(versions(root)) or "none"
        raise IndexError_(f"index version {name!r} not found under {root} (versions: {known})")
    return folder


def prune(root: Path, *, keep: int) -> list[str]:
    current = (root / CURRENT).read_text().strip() if (root / CURRENT).exists() else None
    old = [v for v in versions(root) if v != current]
    removed = old[: max(0, len(old) - (keep - 1))]
    for name in removed:
        shutil.rmtree(root / name, ignore_errors=True)
    return removed
