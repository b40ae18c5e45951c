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
from index.manifest import IndexError_
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


ITEM_FIELDS = ("track_id", "score", "reason", "genre")


def stored_items(items: Sequence[dict]) -> dict[str, list]:
    """Items as the serving store keeps them: one list per field, in rank order (``items.track_id[0]`` is first).

    One document of parallel arrays, not a list of sub-documents: the MongoDB-protocol
    server's cost is per value and per nested document, and this shape measured 1.6x the
    upserts per second of the nested one (README, "The serving store").
    """
    return {f: [item[f] for item in items] for f in ITEM_FIELDS}


def items_of(stored: dict | None) -> list[dict]:
    """The ranked items of a stored ``items`` field (:func:`stored_items`), one dict each; [] when absent."""
    if not stored:
        return []
    fields = [f for f in ITEM_FIELDS if f in stored]
    n = min((len(stored[f]) for f in fields), default=0)
    return [{f: stored[f][i] for f in fields} for i in range(n)]


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
        try:
            query = _query(index, taste)
        except IndexError_:  # a taste that cannot be a query (NaN from a broken track): nothing to offer yet
            query = None
        if query is None:
            out[i] = Recommendation("taste", [])
        else:
            queries[i] = query
    if queries:
        order = list(queries)
        z = np.stack([queries[i].z for i in order])
        points = (z.astype(np.float64) @ index.projection).astype(np.float32)
        pools = nearest_many(index, points, k=POOL * k, exclude=[queries[i].excluded for i in order])
        chosen = [
            _choose(index, queries[i], pool, k=k, max_per_artist=max_per_artist)
            for i, pool in zip(order, pools, strict=True)
        ]
        for i, rec in zip(
            order, _items(index, [tastes[i] for i in order], [queries[i] for i in order], chosen), strict=True
        ):
            out[i] = rec
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


def _choose(index: SimilarityIndex, query: _Query, pool: Pool, *, k: int, max_per_artist: int) -> Pool:
    """The pool re-ranked away from what pushed, at most ``max_per_artist`` per artist, the first ``k``."""
    if not len(pool):
        return pool
    rank = pool.distances.astype(np.float64)
    if query.p_neg is not None:  # far from what was skipped, as much as skips weigh
        points = index.points_at(pool.shards, pool.rows)
        rank = rank - PUSH * query.share * np.linalg.norm(points - query.p_neg[None, :], axis=1)
    artist_of = index.catalogue.artist_of()
    per_artist: Counter = Counter()
    picked: list[int] = []
    for j in np.lexsort((pool.track_ids, rank)).tolist():
        artist = artist_of.get(int(pool.track_ids[j]))
        if artist and per_artist[artist] >= max_per_artist:
            continue
        per_artist[artist] += 1
        picked.append(j)
        if len(picked) == k:
            break
    pick = np.asarray(picked, dtype=np.int64)
    return Pool(pool.track_ids[pick], pool.distances[pick], pool.shards[pick], pool.rows[pick])


def _items(
    index: SimilarityIndex, tastes: list[Taste], queries: list[_Query], chosen: list[Pool]
) -> list[Recommendation]:
    """Items with their reasons for every listener at once: one pass over all the chosen tracks."""
    if not chosen:
        return []
    shards = np.concatenate([c.shards for c in chosen])
    rows = np.concatenate([c.rows for c in chosen])
    refs = np.concatenate([np.broadcast_to(q.z, (len(c), len(q.z))) for q, c in zip(queries, chosen, strict=True)])
    close = iter(index.explain_pairs(refs, index.standardized_at(shards, rows)) if len(rows) else [])
    points = index.points_at(shards, rows) if len(rows) else np.empty((0, index.manifest.dims), np.float32)
    out, at = [], 0
    for taste, query, pool in zip(tastes, queries, chosen, strict=True):
        mine = points[at : at + len(pool)]
        at += len(pool)
        because = [""] * len(pool)
        liked = [t for t in taste.positives if t in index][-10:]
        if liked and len(pool):
            where = index.where(liked)
            liked_p = index.points_at(np.asarray([w[0] for w in where]), np.asarray([w[1] for w in where]))
            nearest = (((mine[:, None, :] - liked_p[None, :, :]) ** 2).sum(axis=2)).argmin(axis=1)
            titles = {n: _title(index, liked[n]) for n in set(nearest.tolist())}
            because = [f"sounds like {titles[n]}, which you liked; " for n in nearest.tolist()]
        elif query.p_neg is not None:
            because = ["away from what you skipped; "] * len(pool)
        items = [
            _item(index, t, 1.0 / (1.0 + d), b + next(close))
            for t, d, b in zip(pool.track_ids.tolist(), pool.distances.tolist(), because, strict=True)
        ]
        out.append(Recommendation("taste", items))
    return out


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
