"""Which track ids are catalogued, for ids the index's own snapshot lacks: the serving store's ``tracks``.

The index version carries a snapshot of the catalogue as it was when it was built
(``index.catalogue``); a track ingested since, or any track before an index can
be opened, is known only to the catalogue itself. The recommender and the
archive ask this lookup for those ids (one query per bucket call or batch, only
when some id is missing from the snapshot). ``ingest`` writes Mongo ``tracks``
before Delta, so an id a player can know is already there. Answers are kept per
Python worker: found ids for good (a catalogued track stays catalogued), ids not
found for :data:`MISS_TTL_S` seconds (so a flood of unknown ids costs one query
per batch, and a track ingested a moment ago is found at the next try).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from connectors import mongo_io
from spark_jobs.streaming.serving import ExecutorStore

MISS_TTL_S = 2.0
MAX_KEPT = 2_000_000  # ids remembered per worker before the memory starts again

_lock = threading.Lock()
_kept: dict[tuple[str, str], tuple[dict[int, str | None], dict[int, float]]] = {}  # (found, missed at) per store


@dataclass(frozen=True)
class CatalogueLookup(ExecutorStore):
    """``recommend.fold.Lookup`` over Mongo ``tracks``."""

    def __call__(self, track_ids: list[int]) -> dict[int, str | None]:
        now = time.monotonic()
        with _lock:
            _found, _missed = _kept.setdefault((self.uri, self.database), ({}, {}))
            ask = [t for t in track_ids if t not in _found and now - _missed.get(t, -MISS_TTL_S) >= MISS_TTL_S]
        if ask:
            found = mongo_io.retrying(
                lambda: mongo_io.catalogued_genres(self.db(), ask),
                seconds=self.retry_s,
                what="the catalogue's track ids",
            )
            with _lock:
                if len(_found) + len(found) > MAX_KEPT:
                    _found.clear()
                if len(_missed) > MAX_KEPT:
                    _missed.clear()
                _found.update(found)
                _missed.update((t, now) for t in ask if t not in found)
        with _lock:
            return {t: _found[t] for t in track_ids if t in _found}
