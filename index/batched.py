"""Nearest tracks for many query points at once: exact scoring inside each query's probed shards.

The stream asks for the neighbours of every listener touched in a micro-batch
together. Instead of one Annoy query per listener, each shard's points (read
once per process from its Annoy file) are scored against all the queries that
probe it with one matrix product, and the k smallest are kept per query. The
result is exact within the probed shards (at least as good as Annoy's answer
there); a query left with fewer than k tracks (small shards, most of them
excluded) falls back to :meth:`SimilarityIndex.query_projected`, which visits
further shards.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.query import SimilarityIndex

CHUNK_CELLS = 4_000_000  # queries x shard tracks scored per matrix product (16 MB of float32)


@dataclass(frozen=True)
class Pool:
    """One query's nearest tracks, nearest first: ids, distances, and where each lives (shard, row)."""

    track_ids: np.ndarray
    distances: np.ndarray
    shards: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.track_ids)


def nearest_many(
    index: SimilarityIndex,
    points: np.ndarray,
    *,
    k: int,
    exclude: Sequence[set[int]] | None = None,
    probe: int | None = None,
) -> list[Pool]:
    """The ``k`` nearest tracks to each row of ``points`` (index space), leaving out ``exclude[i]`` for row i."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, index.manifest.dims)
    n = len(points)
    exclude = exclude if exclude is not None else [set()] * n
    shards = len(index.centroids)
    probe = index.manifest.probe if probe is None else probe
    n_probe = shards if not probe else max(1, min(probe, shards))
    to_centroid = _squared(points, index.centroids)
    probed = np.argsort(to_centroid, axis=1, kind="stable")[:, :n_probe]
    # Rows to leave out, per query and shard.
    skip: list[dict[int, list[int]]] = []
    for ex in exclude:
        by_shard: dict[int, list[int]] = defaultdict(list)
        for s, r in index.where(ex):
            by_shard[s].append(r)
        skip.append(by_shard)
    found: list[list[tuple[np.ndarray, np.ndarray, int, np.ndarray]]] = [[] for _ in range(n)]
    for s in range(shards):
        queries = np.flatnonzero((probed == s).any(axis=1))
        if not len(queries):
            continue
        shard_points, ids = index.shard_points(s), index.shard_ids(s)
        if not len(ids):
            continue
        step = max(1, CHUNK_CELLS // len(ids))
        for start in range(0, len(queries), step):
            chunk = queries[start : start + step]
            dist = _squared(points[chunk], shard_points)
            for j, q in enumerate(chunk):
                rows = skip[q].get(s)
                if rows:
                    dist[j, rows] = np.inf
            want = min(k, len(ids))
            top = (
                np.argpartition(dist, want - 1, axis=1)[:, :want]
                if want < len(ids)
                else np.tile(np.arange(len(ids)), (len(chunk), 1))
            )
            for j, q in enumerate(chunk):
                d = dist[j, top[j]]
                keep = np.isfinite(d)
                found[q].append((np.sqrt(np.maximum(d[keep], 0)), ids[top[j][keep]], s, top[j][keep]))
    pools = []
    for q in range(n):
        pool = _merge(found[q], k)
        if len(pool) < k and n_probe < shards:
            pool = _widened(index, points[q], k, exclude[q])
        pools.append(pool)
    return pools


def _squared(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared euclidean distances between the rows of ``a`` and of ``b``."""
    a64, b64 = a.astype(np.float32), b.astype(np.float32)
    d = (a64 * a64).sum(axis=1)[:, None] - 2.0 * (a64 @ b64.T) + (b64 * b64).sum(axis=1)[None, :]
    return np.maximum(d, 0.0, out=d)


def _merge(parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]], k: int) -> Pool:
    if not parts:
        return Pool(np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.int64))
    dist = np.concatenate([p[0] for p in parts])
    ids = np.concatenate([p[1] for p in parts]).astype(np.int64)
    shards = np.concatenate([np.full(len(p[0]), p[2], np.int64) for p in parts])
    rows = np.concatenate([p[3] for p in parts]).astype(np.int64)
    order = np.lexsort((ids, dist))[:k]
    return Pool(ids[order], dist[order], shards[order], rows[order])


def _widened(index: SimilarityIndex, point: np.ndarray, k: int, exclude: set[int]) -> Pool:
    found = index.query_projected(point, k=k, exclude=exclude)
    where = index.where(n.track_id for n in found)
    return Pool(
        np.asarray([n.track_id for n in found], np.int64),
        np.asarray([n.distance for n in found], np.float32),
        np.asarray([w[0] for w in where], np.int64),
        np.asarray([w[1] for w in where], np.int64),
    )
