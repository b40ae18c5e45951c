"""The recommender's stateful step: many listeners per Python call, their tastes in a MapState per bucket.

Messages are grouped by a bucket of the listener id (``pmod(xxhash64(user_key),
stream.state_buckets)``), not by the listener: ``transformWithStateInPandas``
calls :meth:`TasteBuckets.handleInputRows` once per bucket with all of its
messages, and the fold (``recommend.fold``) and the recommendations
(``recommend.rank.recommend_many``) run over all the bucket's listeners at
once. A listener's taste is one entry of the bucket's MapState ``tastes``
(RocksDB): read once and written once per batch for each listener touched.

Each bucket call also writes its listeners' ``recommendations`` documents
(``stream_serving.Serving``, on a writer thread), from the executor that computed them: the documents never
travel to the driver, and the stateful tasks write in parallel. The writes
are upserts of what the batch's state gives, so a failed and replayed batch
writes the same documents again (exactly-once effect), and a failed write
fails the task before its state is committed.

The bucket count is part of the state layout: it is recorded in the
checkpoint (``stream_layout.check_layout``) and a different setting fails at start.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import types as T
from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle

from index import store
from index.manifest import IndexError_
from index.reader import Index
from recommend.fold import Folded, Rules, fold_batch
from recommend.rank import recommend_many
from recommend.taste import Taste
from spark_jobs.streaming.catalogue import CatalogueLookup
from spark_jobs.streaming.index_delivery import SHIPPED, shipped_folder
from spark_jobs.streaming.pipelined import get_many, put_many
from spark_jobs.streaming.poison import Quarantine
from spark_jobs.streaming.rows import bucket_summary, dead_rows, listener_document, output_frame
from spark_jobs.streaming.serving import Serving
from spark_jobs.streaming.taste_cache import EPOCH_KEY, TasteCache, default_path, new_epoch

INDEX_RECHECK_S = 2.0
SERVE_CHUNK = 200  # listeners recommended, then handed to the writer thread, at a time
log = logging.getLogger("earshot.stream")

TASTE_KEY = T.StructType([T.StructField("user_id", T.StringType())])
TASTE_VALUE = T.StructType([T.StructField("blob", T.BinaryType())])

# ---------------------------------------------------------------- the index, cached per Python worker

_cache: dict[str, Any] = {"root": None, "folder": None, "index": None, "checked": 0.0}
_cache_lock = threading.Lock()
_tastes: list[TasteCache | None] = []


def host_cache(max_listeners: int) -> TasteCache | None:
    """The host's copy of the tastes (``spark_jobs.streaming.taste_cache``), opened once per Python worker; None when
    switched off (0) or when it cannot be opened here (then every taste comes from the state store)."""
    if max_listeners <= 0:
        return None
    with _cache_lock:
        if not _tastes:
            try:
                _tastes.append(TasteCache(default_path(), max_listeners))
            except Exception as exc:  # noqa: BLE001 - the copy only saves reads: the stream goes on without it
                log.warning("no copy of the tastes on this host (%s): every taste is read from the state store", exc)
                _tastes.append(None)
        return _tastes[0]


def current_index(root: str) -> Index:
    """The published version under ``root`` (or the newest one Spark shipped, for SHIPPED), re-resolved at most
    every INDEX_RECHECK_S seconds; the recommender and the archive both ask here, with the root that
    ``index_delivery.executor_root`` gives.

    A version that cannot be resolved or opened keeps the last good one; a worker that has none at all
    raises :class:`IndexError_`, which fails the task and stops the query with the reason: the stream
    only starts once a version is published, so an executor that cannot see one is misconfigured.
    """
    now = time.monotonic()
    with _cache_lock:
        if _cache["root"] == root and _cache["index"] is not None and now - _cache["checked"] < INDEX_RECHECK_S:
            return _cache["index"]
        if _cache["root"] != root:
            _cache.update(root=root, folder=None, index=None)
        _cache["checked"] = now
        try:
            folder = shipped_folder() if root == SHIPPED else store.resolve(Path(root), None)
            if folder != _cache["folder"]:
                _cache["index"], _cache["folder"] = Index(folder), folder
        except IndexError_ as exc:
            if _cache["index"] is None:
                raise IndexError_(
                    f"no index version can be opened on {socket.gethostname()} ({exc}); with stream.index_delivery: "
                    f"path every executor must see paths.index_root ({root}) at the same path; "
                    "stream.index_delivery: spark ships the versions instead"
                ) from exc
            log.warning("index under %s not usable, keeping %s: %s", root, _cache["folder"], exc)
        return _cache["index"]


# ---------------------------------------------------------------- the processor


class TasteBuckets(StatefulProcessor):
    """transformWithStateInPandas processor keyed by listener bucket; tastes in a MapState by listener."""

    def __init__(
        self,
        *,
        index_root: str,
        max_future_s: float,
        max_age_s: float,
        half_life_ms: float,
        k: int,
        serving: Serving,
        lookup: CatalogueLookup | None = None,
        quarantine: Quarantine | None = None,
        query_key: str = "",
        cache_listeners: int = 0,
    ):
        self.serving = serving
        self.lookup = lookup  # the catalogue, for track ids the index's snapshot lacks
        self.query_key = query_key  # which checkpoint: the host's copy of the tastes is per query and bucket
        self.cache_listeners = cache_listeners
        self.index_root = index_root
        self.max_future_s = max_future_s
        self.max_age_s = max_age_s
        self.half_life_ms = half_life_ms
        self.k = k
        self.quarantine = quarantine

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.tastes = handle.getMapState("tastes", TASTE_KEY, TASTE_VALUE)

    def _read(self, bucket: int, users: list[str]) -> dict[str, Taste]:
        """The stored tastes of ``users``: from the host's copy while the bucket's epoch holds, else the store."""
        cache = host_cache(self.cache_listeners)
        known: dict[str, bytes] = {}
        if cache is not None:
            epoch = self.tastes.getValue((EPOCH_KEY,))
            known, self._generation = cache.lookup(
                (self.query_key, bucket), bytes(epoch[0]) if epoch is not None else None, users
            )
        self._hits = len(known)
        missing = [user for user in users if user not in known]
        for user, value in zip(missing, get_many(self.tastes, [(user,) for user in missing]), strict=True):
            if value is not None:
                known[user] = self._read_now[user] = bytes(value[0])
        return {user: Taste.from_bytes(known[user]) for user in users if user in known}

    def _write(self, bucket: int, changed: list[Folded]) -> None:
        """Store the changed tastes, and a new epoch for the bucket under which the host's copy is true."""
        fresh = dict(self._read_now)
        blobs = [(f.user_id, f.taste.to_bytes()) for f in changed]
        fresh.update(blobs)
        writes = [((user,), (blob,)) for user, blob in blobs]
        cache = host_cache(self.cache_listeners)
        epoch = new_epoch() if cache is not None and changed else None
        if epoch is not None:
            writes.append(((EPOCH_KEY,), (epoch,)))
        put_many(self.tastes, writes)
        if epoch is not None:
            cache.store((self.query_key, bucket), epoch, self._generation, fresh)

    def _rules(self) -> Rules:
        q = self.quarantine
        return Rules(
            now=datetime.now(UTC),
            max_future_s=self.max_future_s,
            max_age_s=self.max_age_s,
            quarantined=(lambda p, o: q.reason if q.holds(p, o) else None) if q is not None else Rules.quarantined,
        )

    def handleInputRows(self, key, rows, timerValues) -> Iterator[pd.DataFrame]:  # noqa: N802 - Spark's API
        t0 = time.perf_counter()
        frame = pd.concat(list(rows), ignore_index=True)
        index = current_index(self.index_root)
        t1 = time.perf_counter()
        read_ms = [0.0]
        self._read_now, self._hits, self._generation = {}, 0, 0

        def read(users: list[str]) -> dict[str, Taste]:
            started = time.perf_counter()
            try:
                return self._read(int(key[0]), users)
            finally:
                read_ms[0] = (time.perf_counter() - started) * 1000

        folded, dead = fold_batch(frame, read, index, self._rules(), half_life_ms=self.half_life_ms, lookup=self.lookup)
        t2 = time.perf_counter()
        changed = [f for f in folded if f.changed]
        # Recommend a chunk, hand its documents to the writer thread, recommend the next: the serving
        # store takes each chunk while this process computes the next and writes the state.
        writes: list[tuple[list[Folded], Future]] = []
        now = datetime.now(UTC)
        for start in range(0, len(changed) if index is not None else 0, SERVE_CHUNK):
            part = changed[start : start + SERVE_CHUNK]
            answers = recommend_many(index, [f.taste for f in part], k=self.k)
            docs = [
                {"_id": f.user_id, **listener_document(f, rec, index), "written_at": now}
                for f, rec in zip(part, answers, strict=True)
            ]
            writes.append((part, self.serving.submit(docs)))
        t3 = time.perf_counter()
        self._write(int(key[0]), changed)
        t4 = time.perf_counter()
        # Every write is done (or has failed, failing the task before its state is committed) before
        # the rows that say so leave this call.
        written_ms: dict[str, float] = {}
        busy_ms = 0.0
        for part, write in writes:
            done_ms, took_ms = write.result()
            busy_ms += took_ms
            written_ms.update((f.user_id, done_ms) for f in part)
        t5 = time.perf_counter()
        rows = dead_rows(dead)
        summary = bucket_summary(folded, written_ms)
        timing = {
            "messages": len(frame),
            "listeners": len(changed),
            "cached": self._hits,
            "decode_ms": (t1 - t0) * 1000,
            "state_read_ms": read_ms[0],
            "fold_ms": (t2 - t1) * 1000 - read_ms[0],
            "recommend_ms": (t3 - t2) * 1000,
            "state_write_ms": (t4 - t3) * 1000,
            "serve_ms": busy_ms,
            "serve_wait_ms": (t5 - t4) * 1000,
            "output_ms": (time.perf_counter() - t5) * 1000,
        }
        rows.append({"kind": "bucket", "stats": json.dumps({**summary, **timing})})
        yield output_frame(rows)

    def handleInitialState(self, key, initialState, timerValues) -> None:  # noqa: N802 - Spark's API
        """Seed the bucket's tastes (``stream --initial-tastes``): one (user_id, taste) row per listener."""
        users, blobs = initialState["user_id"], initialState["taste"]
        seeds = [((user,), (bytes(blob),)) for user, blob in zip(users, blobs, strict=True)]
        if self.cache_listeners:  # whatever a worker held for this bucket is not the state any more
            seeds.append(((EPOCH_KEY,), (new_epoch(),)))
        put_many(self.tastes, seeds)

    def close(self) -> None:
        pass
