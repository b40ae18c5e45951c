"""Recommendations from tastes: query the index near what pulled, away from what pushed, many listeners at once.

- Cold start: a listener whose history is a single liked or finished track
  gets a song radio around it.
- Otherwise the query point, in standardized units, is the centre of the pulled
  tracks moved away from the centre of the pushed ones (by the share of
  pushing weight); candidates are ranked by distance to it less their distance
  from the pushed centre (weighted by that share), heard and disliked tracks
  are left out, and no artist takes more than ``max_per_artist`` places.
- Each item says why: the liked track it sounds most like and the feature groups
  that are close.

:func:`recommend_many` answers every listener of a micro-batch together: their
query points are standardized and projected as one matrix, and their
candidates come from one batched search (:func:`index.batched.nearest_many`);
:func:`recommend` is the same for one listener.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.batched import Pool, nearest_many
from index.query import SimilarityIndex
from index.radio import radio_many
from index.taste import Taste

AWAY = 1.0  # how far past the pulled centre the query moves, at a fully negative history
PUSH = 1.5  # weight of the distance from the pushed centre in the ranking, at a fully negative history
POOL = 3  # candidates per item asked for, before exclusions, re-ranking and the artist cap


@dataclass(frozen=True)
class Recommendation:
    source: str  # "taste" or "radio"
    items: list[dict]  # track_id, score, reason, genre


@dataclass(frozen=True)
class _Query:
    z: np.ndarray  # the query point, standardized
    p_neg: np.ndarray | None  # the pushed centre, index space
    share: float  # the pushing share of the taste's weight
    excluded: set[int]


def recommend(index: SimilarityIndex, taste: Taste, *, k: int = 20, max_per_artist: int = 3) -> Recommendation:
    return recommend_many(index, [taste], k=k, max_per_artist=max_per_artist)[0]


def recommend_many(
    index: SimilarityIndex, tastes: Sequence[Taste], *, k: int = 20, max_per_artist: int = 3
) -> list[Recommendation]:
    """One :class:`Recommendation` per taste, in order."""
    out: list[Recommendation | None] = [None] * len(tastes)
    queries: dict[int, _Query] = {}
    seeds: dict[int, int] = {}
    for i, taste in enumerate(tastes):
        seed = _radio_seed(index, taste)
        if seed is not None:
            seeds[i] = seed
            continue
        query = _query(index, taste)
        if query is None:
            out[i] = Recommendation("taste", [])
        else:
            queries[i] = query
    if queries:
        order = list(queries)
        z = np.stack([queries[i].z for i in order])
        points = (z.astype(np.float64) @ index.projection).astype(np.float32)
        pools = nearest_many(index, points, k=POOL * k, exclude=[queries[i].excluded for i in order])
        for i, pool in zip(order, pools, strict=True):
            out[i] = _rank(index, tastes[i], queries[i], pool, k=k, max_per_artist=max_per_artist)
    if seeds:
        for i, rec in zip(seeds, _radios(index, list(seeds.values()), k=k), strict=True):
            out[i] = rec
    return [r if r is not None else Recommendation("taste", []) for r in out]


def _radio_seed(index: SimilarityIndex, taste: Taste) -> int | None:
    heard = {t for t in taste.recent if t in index}
    if len(heard) == 1 and taste.positives and taste.neg_w == 0 and taste.positives[-1] in index:
        return taste.positives[-1]
    return None


def _radios(index: SimilarityIndex, seeds: list[int], *, k: int) -> list[Recommendation]:
    stations = radio_many(index, seeds, length=k, artist_of=index.catalogue.artist_of())
    out = []
    for seed, station in zip(seeds, stations, strict=True):
        title = _title(index, seed)
        out.append(
            Recommendation(
                "radio", [_item(index, n.track_id, n.score, f"song radio from {title}; {n.reason}") for n in station]
            )
        )
    return out


def _query(index: SimilarityIndex, taste: Taste) -> _Query | None:
    pos, neg = taste.centre("pos"), taste.centre("neg")
    if pos is None and neg is None:
        return None
    share = taste.negative_share()
    z_pos = index.standardize(pos) if pos is not None else np.zeros(len(index.manifest.columns), np.float32)
    z_neg = index.standardize(neg) if neg is not None else None
    z = z_pos if z_neg is None else z_pos + AWAY * share * (z_pos - z_neg)
    p_neg = index.project(z_neg) if z_neg is not None else None
    return _Query(z.astype(np.float32), p_neg, share, set(taste.recent) | set(taste.disliked))


def _rank(
    index: SimilarityIndex, taste: Taste, query: _Query, pool: Pool, *, k: int, max_per_artist: int
) -> Recommendation:
    if not len(pool):
        return Recommendation("taste", [])
    points = index.points_at(pool.shards, pool.rows)
    rank = pool.distances.astype(np.float64)
    if query.p_neg is not None:  # far from what was skipped, as much as skips weigh
        rank = rank - PUSH * query.share * np.linalg.norm(points - query.p_neg[None, :], axis=1)
    order = np.lexsort((pool.track_ids, rank))
    catalogue = index.catalogue
    per_artist: Counter = Counter()
    chosen: list[int] = []
    for j in order.tolist():
        track = catalogue.get(int(pool.track_ids[j]))
        artist = track.artist if track else None
        if artist and per_artist[artist] >= max_per_artist:
            continue
        per_artist[artist] += 1
        chosen.append(j)
        if len(chosen) == k:
            break
    pick = np.asarray(chosen, dtype=np.int64)
    close = index.explain_many(query.z, index.standardized_at(pool.shards[pick], pool.rows[pick]))
    liked = [t for t in taste.positives if t in index][-10:]
    because = [""] * len(pick)
    if liked:
        liked_p = np.stack([index.projected_of(t) for t in liked])
        nearest = (((points[pick][:, None, :] - liked_p[None, :, :]) ** 2).sum(axis=2)).argmin(axis=1)
        because = [f"sounds like {_title(index, liked[n])}, which you liked; " for n in nearest.tolist()]
    elif query.p_neg is not None:
        because = ["away from what you skipped; "] * len(pick)
    items = [
        _item(index, int(pool.track_ids[j]), 1.0 / (1.0 + float(pool.distances[j])), b + c)
        for j, b, c in zip(pick.tolist(), because, close, strict=True)
    ]
    return Recommendation("taste", items)


def _title(index: SimilarityIndex, track_id: int) -> str:
    track = index.catalogue.get(track_id)
    return f"'{track.title}'" if track else f"track {track_id}"


def _item(index: SimilarityIndex, track_id: int, score: float, reason: str) -> dict:
    track = index.catalogue.get(track_id)
    return {
        "track_id": int(track_id),
        "score": round(float(score), 4),  # closeness to the taste: 1 / (1 + distance)
        "reason": reason,
        "genre": track.genre if track else None,
    }
