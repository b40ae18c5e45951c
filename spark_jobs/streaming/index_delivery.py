"""How the stream's executors get the index: from a shared path, or shipped by Spark (``stream.index_delivery``).

- ``path`` (the default): executors open the published version under ``paths.index_root``
  themselves, so that root must be a filesystem every executor mounts.
- ``spark``: the driver packs the published version into ``<state_root>/dist/index-<version>.tar``
  and hands it to ``SparkContext.addArchive``; Spark copies it to every executor with the next
  tasks and unpacks it into the executor's files folder. The driver looks again after every
  micro-batch, so a version that ``build-index`` publishes while the stream runs reaches the
  executors at the next batch, and they switch to the newest version they hold. Only the driver
  reads the index root.
"""

from __future__ import annotations

import logging
import tarfile
import time
from pathlib import Path

from conf.settings import Settings
from index import store
from index.manifest import MANIFEST_FILE, IndexError_

SHIPPED = "spark-files:"  # the processor's index root when versions come through Spark
PREFIX = "index-"
RECHECK_S = 2.0

log = logging.getLogger("earshot.stream")


def executor_root(settings: Settings) -> str:
    """What the stream's processor gets as its index root."""
    return SHIPPED if settings.stream.index_delivery == "spark" else str(settings.paths.index_root)


def shipped_folder(base: Path | None = None) -> Path:
    """The newest index version Spark has delivered to this executor (or this driver, in local mode)."""
    if base is None:
        from pyspark import SparkFiles

        try:
            base = Path(SparkFiles.getRootDirectory())
        except Exception:  # noqa: BLE001 - outside a Spark worker: the working folder is where executors unpack
            base = Path.cwd()
    found = sorted(base.glob(f"{PREFIX}v*/v*/{MANIFEST_FILE}"), key=lambda p: p.parent.name)
    if not found:
        raise IndexError_(f"no index version has reached this executor yet ({base}; stream.index_delivery: spark)")
    return found[-1].parent


def pack_version(root: Path, version: str, dist: Path) -> Path:
    """``<dist>/index-<version>.tar`` holding ``<version>/...`` (written once; versions never change)."""
    out = dist / f"{PREFIX}{version}.tar"
    if not out.exists():
        dist.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:
            tar.add(store.resolve(root, version), arcname=version)
        tmp.replace(out)
    return out


class IndexShipper:
    """Driver side: ship the published version with ``addArchive``, and each newer one once it is published."""

    def __init__(self, spark, settings: Settings):
        self.sc = spark.sparkContext
        self.root = Path(settings.paths.index_root)
        self.dist = Path(settings.paths.state_root) / "dist"
        self.shipped: str | None = None
        self.checked = 0.0

    def __call__(self) -> str | None:
        now = time.monotonic()
        if self.shipped is not None and now - self.checked < RECHECK_S:
            return self.shipped
        self.checked = now
        try:
            version = store.current_version(self.root)
            archive = pack_version(self.root, version, self.dist)
        except (IndexError_, OSError) as exc:
            log.warning("index not shipped, executors keep %s: %s", self.shipped or "nothing", exc)
            return self.shipped
        if version != self.shipped:
            self.sc.addArchive(str(archive))
            log.info("index %s shipped to the executors (%s)", version, archive)
            self.shipped = version
        return self.shipped
