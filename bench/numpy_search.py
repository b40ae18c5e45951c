"""The batched search as Earshot ran it before ``index.kernels``: one float64 matrix product per shard and group.

Kept as ``bench.recommend``'s baseline only (the index serves with ``index.batched``): the same shards
visited in the same two rounds, each shard's points scored against the queries that visit it with one
matrix product, the k best kept with ``argpartition``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.batched import Hits, _excluded, _second_round, _visits, _widen_short
from index.query import SimilarityIndex

CHUNK_CELLS = 4_000_000  # queries x shard tracks scored per matrix product (16 MB of float32)
NONE = np.iinfo(np.int64).max  # the sort key of an empty or excluded slot
_POINTS64: dict[tuple[int, int], np.ndarray] = {}


def _points64(index: SimilarityIndex, shard: int) -> np.ndarray:
    """``shard``'s points in double precision, kept once made (as the old engine kept them)."""
    key = (id(index), shard)
    if key not in _POINTS64:
        _POINTS64[key] = index.shard_points(shard).astype(np.float64)
    return _POINTS64[key]


def numpy_nearest_flat(
    index: SimilarityIndex,
    points: np.ndarray,
    *,
    k: int,
    exclude: Sequence[set[int]] | None = None,
    probe: int | None = None,
) -> Hits:
    """``index.batched.nearest_flat`` as it was before the compiled kernels (the same shards visited, the same
    answers): each shard scored per group of queries and chunk, in numpy."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, index.manifest.dims)
    n = len(points)
    bounds, order = _visits(index, points, probe)
    cap = order.shape[1]
    # Every query's candidates in one row of sort keys: distance (float32 bits, which order like the
    # non-negative floats they are) above the track id's rank, so ties go to the smaller id.
    found = Found(np.full((n, cap * k), NONE, np.int64), np.zeros((n, cap * k), np.int64), np.zeros(n, np.int64))
    excluded = _excluded(index, exclude, n)
    _score(index, points, np.arange(n, dtype=np.int64), order[:, 0], k, excluded, found)
    if cap > 1:
        _score(index, points, *_second_round(bounds, order, _kth_distance(found.keys, k)), k, excluded, found)
    return _widen_short(index, _best(index, found.keys, found.flats, k), points, k, exclude, visited=cap)


@dataclass(frozen=True)
class Found:
    """Each query's candidates so far: sort keys, flat positions, and how many slots are filled."""

    keys: np.ndarray
    flats: np.ndarray
    filled: np.ndarray


def _score(
    index: SimilarityIndex,
    points: np.ndarray,
    queries: np.ndarray,
    visit: np.ndarray,
    k: int,
    excluded: tuple[np.ndarray, np.ndarray, np.ndarray],
    found: Found,
) -> None:
    """Score query ``queries[i]`` against every track of shard ``visit[i]``, adding its k best to ``found``."""
    ex_owner, ex_shard, ex_row = excluded
    shards = len(index.centroids)
    ex_bounds = np.searchsorted(ex_shard, np.arange(shards + 1))
    offsets = index.flat_at(np.arange(shards), np.zeros(shards, np.int64))
    at = np.full(len(points), -1, np.int64)  # a query's place in the chunk being scored
    by_shard = np.argsort(visit, kind="stable")
    for part in np.split(by_shard, np.flatnonzero(np.diff(visit[by_shard])) + 1) if len(visit) else []:
        s = int(visit[part[0]])
        shard_ids = index.shard_ids(s)
        if not len(shard_ids):
            continue
        skip_q, skip_r = ex_owner[ex_bounds[s] : ex_bounds[s + 1]], ex_row[ex_bounds[s] : ex_bounds[s + 1]]
        want = min(k, len(shard_ids))
        rank = index.id_rank_at(offsets[s] + np.arange(len(shard_ids)))
        step = max(1, CHUNK_CELLS // len(shard_ids))
        mine = queries[part]
        for start in range(0, len(mine), step):
            chunk = mine[start : start + step]
            dist = _squared(points[chunk], _points64(index, s), index.shard_norms(s))
            at[chunk] = np.arange(len(chunk))
            hit = at[skip_q] >= 0
            dist[at[skip_q[hit]], skip_r[hit]] = np.inf
            at[chunk] = -1
            top = (
                np.argpartition(dist, want - 1, axis=1)[:, :want]
                if want < len(shard_ids)
                else np.tile(np.arange(len(shard_ids)), (len(chunk), 1))
            )
            d = np.sqrt(np.take_along_axis(dist, top, axis=1)).astype(np.float32)
            key = (d.view(np.int32).astype(np.int64) << 32) | rank[top]
            key[~np.isfinite(d)] = NONE
            cols = found.filled[chunk][:, None] + np.arange(want)
            found.keys[chunk[:, None], cols] = key
            found.flats[chunk[:, None], cols] = offsets[s] + top
            found.filled[chunk] += want


def _kth_distance(keys: np.ndarray, k: int) -> np.ndarray:
    """Each row's k-th smallest distance among its keys (inf with fewer than k candidates)."""
    if keys.shape[1] < k:
        return np.full(len(keys), np.inf, np.float32)
    kth = np.partition(keys, k - 1, axis=1)[:, k - 1]
    out = (kth >> 32).astype(np.int32).view(np.float32)
    return np.where(kth == NONE, np.inf, out).astype(np.float32)


def _squared(a: np.ndarray, b: np.ndarray, b_norms: np.ndarray) -> np.ndarray:
    """Squared euclidean distances between the rows of ``a`` and of ``b`` (float64; ``b_norms``: their squared lengths).

    In double precision: a float32 product rounds a row's distances differently with the number of
    rows beside it (BLAS takes another kernel for one query than for many), so the same listener
    could get other scores, or another tie order, in a differently composed micro-batch, and a
    restarted stream would not equal an undisturbed one. Rounded to float32 afterwards, the
    double's jitter is gone.
    """
    a64 = a.astype(np.float64)
    d = (a64 * a64).sum(axis=1)[:, None] - 2.0 * (a64 @ b.T) + b_norms[None, :]
    return np.maximum(d, 0.0, out=d)


def _best(index: SimilarityIndex, keys: np.ndarray, flats: np.ndarray, k: int) -> Hits:
    """Each row's ``k`` smallest keys, in order, as flat hits (rows without candidates give none)."""
    n, slots = keys.shape
    want = min(k, slots)
    if not n or not want:
        e = np.empty(0, np.int64)
        return Hits(e, e, np.empty(0, np.float32), e)
    top = np.argpartition(keys, want - 1, axis=1)[:, :want] if want < slots else np.tile(np.arange(slots), (n, 1))
    top = np.take_along_axis(top, np.take_along_axis(keys, top, axis=1).argsort(axis=1), axis=1)
    key, flat = np.take_along_axis(keys, top, axis=1).ravel(), np.take_along_axis(flats, top, axis=1).ravel()
    found = key != NONE
    key, flat = key[found], flat[found]
    query = np.repeat(np.arange(n, dtype=np.int64), want)[found]
    distances = (key >> 32).astype(np.int32).view(np.float32)
    return Hits(query, index.ids_at(flat), distances, flat)
