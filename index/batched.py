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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.query import SimilarityIndex

CHUNK_CELLS = 4_000_000  # queries x shard tracks scored per matrix product (16 MB of float32)
NONE = np.iinfo(np.int64).max  # the sort key of an empty or excluded slot


@dataclass(frozen=True)
class Hits:
    """Nearest tracks of one or many queries as flat arrays: query ``query[i]``'s, nearest first within it.

    ``items`` are the tracks' places in the index version (:class:`index.reader.Index`'s items).
    """

    query: np.ndarray
    track_ids: np.ndarray
    distances: np.ndarray
    items: np.ndarray

    def __len__(self) -> int:
        return len(self.track_ids)

    def take(self, keep: np.ndarray) -> Hits:
        return Hits(*(a[keep] for a in (self.query, self.track_ids, self.distances, self.items)))

    def split(self, n: int) -> list[Hits]:
        """One :class:`Hits` per query 0..n-1."""
        bounds = np.searchsorted(self.query, np.arange(n + 1))
        return [self.take(slice(bounds[q], bounds[q + 1])) for q in range(n)]


def nearest_many(
    index: SimilarityIndex,
    points: np.ndarray,
    *,
    k: int,
    exclude: Sequence[set[int]] | None = None,
    probe: int | None = None,
) -> list[Hits]:
    """The ``k`` nearest tracks to each row of ``points`` (index space), leaving out ``exclude[i]`` for row i."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, index.manifest.dims)
    return nearest_flat(index, points, k=k, exclude=exclude, probe=probe).split(len(points))


def nearest_flat(
    index: SimilarityIndex,
    points: np.ndarray,
    *,
    k: int,
    exclude: Sequence[set[int]] | None = None,
    probe: int | None = None,
) -> Hits:
    """:func:`nearest_many` as flat arrays sorted by query: the work is per shard and per chunk, not per query.

    The shards each query visits follow :meth:`SimilarityIndex.query_projected`'s rule in two rounds:
    every query's nearest shard first, then, up to ``probe`` shards in all, those whose lower bound
    is nearer than the k-th track the first round found.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, index.manifest.dims)
    n = len(points)
    shards = len(index.centroids)
    probe = index.manifest.probe if probe is None else probe
    cap = shards if not probe else max(1, min(probe, shards))
    bounds = index.shard_bounds(points)
    order = np.argsort(bounds, axis=1, kind="stable")[:, :cap]
    # Every query's candidates in one row of sort keys: distance (float32 bits, which order like the
    # non-negative floats they are) above the track id's rank, so ties go to the smaller id.
    found = Found(np.full((n, cap * k), NONE, np.int64), np.zeros((n, cap * k), np.int64), np.zeros(n, np.int64))
    excluded = _excluded(index, exclude, n)
    everyone = np.arange(n, dtype=np.int64)
    _score(index, points, everyone, order[:, 0], k, excluded, found)
    if cap > 1:
        kth = _kth_distance(found.keys, k)
        rest = order[:, 1:]
        near = np.take_along_axis(bounds, rest, axis=1) ** 2 < (kth * kth)[:, None]
        _score(index, points, np.repeat(everyone, near.sum(axis=1)), rest[near], k, excluded, found)
    hits = _best(index, found.keys, found.flats, k)
    if cap < shards:
        counts = np.bincount(hits.query, minlength=n)
        short = np.flatnonzero(counts < k)
        if len(short):
            hits = _with_widened(index, hits, points, short, k, exclude)
    return hits


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
            dist = _squared(points[chunk], index.shard_points64(s), index.shard_norms(s))
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


def _excluded(
    index: SimilarityIndex, exclude: Sequence[set[int]] | None, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, shard, row) of every excluded track that is in the index, sorted by shard."""
    if not exclude:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    sizes = [len(e) for e in exclude]
    owner = np.repeat(np.arange(n, dtype=np.int64), sizes)
    tracks = np.fromiter((t for e in exclude for t in e), dtype=np.int64, count=sum(sizes))
    found, shard, row = index.locate_many(tracks)
    owner, shard, row = owner[found], shard[found], row[found]
    order = np.argsort(shard, kind="stable")
    return owner[order], shard[order], row[order]


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


def _with_widened(index: SimilarityIndex, hits: Hits, points: np.ndarray, short: np.ndarray, k: int, exclude) -> Hits:
    """``hits`` with the queries in ``short`` answered again over further shards (fewer than k found)."""
    redo = np.isin(hits.query, short)
    extra = [_widened(index, points[q], k, exclude[q] if exclude else set()) for q in short.tolist()]
    query = np.concatenate(
        [hits.query[~redo], *(np.full(len(p), q, np.int64) for q, p in zip(short.tolist(), extra, strict=True))]
    )
    cols = [
        np.concatenate([getattr(hits, f)[~redo], *(getattr(p, f) for p in extra)])
        for f in ("track_ids", "distances", "items")
    ]
    order = np.argsort(query, kind="stable")
    return Hits(query[order], *(c[order] for c in cols))


def _widened(index: SimilarityIndex, point: np.ndarray, k: int, exclude: set[int]) -> Hits:
    found = index.query_projected(point, k=k, exclude=exclude)
    ids = np.asarray([n.track_id for n in found], np.int64)
    _, shard, row = index.locate_many(ids)
    distances = np.asarray([n.distance for n in found], np.float32)
    return Hits(np.zeros(len(ids), np.int64), ids, distances, index.flat_at(shard, row))
