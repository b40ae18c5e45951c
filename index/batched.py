"""Nearest tracks for many query points at once: exact scoring inside each query's probed shards.

The stream asks for the neighbours of every listener touched in a micro-batch
together. Instead of one Annoy query per listener, this module decides which
shards each query visits (the similarity index's rule, in two rounds) and hands
the (query, shard) pairs, grouped by shard, to a compiled kernel
(``index.kernels``) that scores each query against every track of the shard
from one flat copy of the points (read once per process) and keeps its k best.
The result is exact within the probed shards (at least as good as Annoy's answer
there); a query left with fewer than k tracks (small shards, most of them
excluded) falls back to :meth:`SimilarityIndex.query_projected`, which visits
further shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index import kernels
from index.query import SimilarityIndex


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
    """:func:`nearest_many` as flat arrays sorted by query: the work is per (query, shard) pair, compiled.

    The shards each query visits follow :meth:`SimilarityIndex.query_projected`'s rule in two rounds:
    every query's nearest shard first, then, up to ``probe`` shards in all, those whose lower bound
    is nearer than the k-th track the first round found.
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, index.manifest.dims)
    n = len(points)
    if n == 0 or k < 1:
        e = np.empty(0, np.int64)
        return Hits(e, e, np.empty(0, np.float32), e)
    bounds, order = _visits(index, points, probe)
    kernels.ready()
    search = _Search.of(index, points, exclude, k)
    search.score(np.arange(n, dtype=np.int64), order[:, 0])
    if order.shape[1] > 1:
        search.score(*_second_round(bounds, order, search.kth_distance()))
    ranked = np.argsort(search.keys, axis=1)  # nearest first; empty slots (kernels.NONE) last
    keys = np.take_along_axis(search.keys, ranked, axis=1)
    filled = keys != kernels.NONE
    flats = np.take_along_axis(search.flats, ranked, axis=1)[filled]
    query = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], keys.shape)[filled]
    hits = Hits(query, index.ids_at(flats), (keys[filled] >> 32).astype(np.int32).view(np.float32), flats)
    return _widen_short(index, hits, points, k, exclude, visited=order.shape[1])


def _visits(index: SimilarityIndex, points: np.ndarray, probe: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(each query's lower bound to every shard, the shards it may visit: nearest bound first, at most ``probe``)."""
    shards = len(index.centroids)
    probe = index.manifest.probe if probe is None else probe
    cap = shards if not probe else max(1, min(probe, shards))
    bounds = index.shard_bounds(points)
    return bounds, np.argsort(bounds, axis=1, kind="stable")[:, :cap]


def _second_round(bounds: np.ndarray, order: np.ndarray, kth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query, shard) pairs of the second round: the further shards whose bound is nearer than the k-th found."""
    rest = order[:, 1:]
    near = np.take_along_axis(bounds, rest, axis=1) ** 2 < (kth * kth)[:, None]
    return np.repeat(np.arange(len(order), dtype=np.int64), near.sum(axis=1)), rest[near]


def _widen_short(index: SimilarityIndex, hits: Hits, points: np.ndarray, k: int, exclude, *, visited: int) -> Hits:
    """``hits``, with the queries left with fewer than ``k`` answered again over further shards."""
    if visited >= len(index.centroids):
        return hits
    short = np.flatnonzero(np.bincount(hits.query, minlength=len(points)) < k)
    return _with_widened(index, hits, points, short, k, exclude) if len(short) else hits


@dataclass(frozen=True)
class _Search:
    """One batched search's inputs as the kernel takes them, and each query's heap of its best ``k`` so far."""

    flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # points (tracks, dims), norms, id ranks, offsets
    points64: np.ndarray
    norms64: np.ndarray
    ex_start: np.ndarray  # query q leaves out the flat positions ex_flat[ex_start[q]:ex_start[q + 1]]
    ex_flat: np.ndarray
    keys: np.ndarray  # (queries, k) max-heaps of sort keys (kernels.NONE: empty)
    flats: np.ndarray
    size: np.ndarray

    @classmethod
    def of(cls, index: SimilarityIndex, points: np.ndarray, exclude: Sequence[set[int]] | None, k: int) -> _Search:
        n = len(points)
        points64, norms = index.flat_points64()
        offsets, rank = index.flat_layout()
        owner, shard, row = _excluded(index, exclude, n)
        ex = index.flat_at(shard, row)
        by_owner = np.lexsort((ex, owner))
        p64 = np.ascontiguousarray(points, np.float64)
        return cls(
            (points64, norms, rank, offsets),
            p64,
            (p64 * p64).sum(axis=1),
            np.searchsorted(owner[by_owner], np.arange(n + 1)).astype(np.int64),
            ex[by_owner].astype(np.int64),
            np.full((n, k), kernels.NONE, np.int64),
            np.zeros((n, k), np.int64),
            np.zeros(n, np.int64),
        )

    def score(self, queries: np.ndarray, visit: np.ndarray) -> None:
        """Score query ``queries[i]`` against every track of shard ``visit[i]`` (grouped by shard: cache-friendly)."""
        by_shard = np.argsort(visit, kind="stable")
        points, norms, rank, offsets = self.flat
        kernels.score_pairs(
            points, norms, rank, offsets, self.points64, self.norms64,
            queries[by_shard].astype(np.int64), visit[by_shard].astype(np.int64),
            self.ex_start, self.ex_flat, self.keys, self.flats, self.size,
        )  # fmt: skip

    def kth_distance(self) -> np.ndarray:
        """Each query's k-th smallest distance so far (inf while it holds fewer than k)."""
        root = (self.keys[:, 0] >> 32).astype(np.int32).view(np.float32)
        return np.where(self.size == self.keys.shape[1], root, np.inf).astype(np.float32)


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
