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
candidates come from one batched search (:meth:`index.reader.Index.nearest`);
:func:`recommend` is the same for one listener.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.reader import Hits, Index
from recommend.items import Recommendation
from recommend.taste import Taste

AWAY = 1.0  # how far past the pulled centre the query moves, at a fully negative history
PUSH = 1.5  # weight of the distance from the pushed centre in the ranking, at a fully negative history
POOL = 3  # candidates per item asked for, before exclusions, re-ranking and the artist cap
LIKED = 10  # the latest liked tracks an item's reason may name
# Each index version's "sounds like 'Title', which you liked; " by track id, made once per process and version
# (the stream names the same liked tracks batch after batch); forgotten with the version.
_liked_phrases: weakref.WeakKeyDictionary[Index, dict[int, str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Query:
    z: np.ndarray  # the query point, standardized
    p_neg: np.ndarray | None  # the pushed centre, index space
    share: float  # the pushing share of the taste's weight
    excluded: set[int]


def recommend(index: Index, taste: Taste, *, k: int = 20, max_per_artist: int = 3) -> Recommendation:
    return recommend_many(index, [taste], k=k, max_per_artist=max_per_artist)[0]


def recommend_many(
    index: Index, tastes: Sequence[Taste], *, k: int = 20, max_per_artist: int = 3
) -> list[Recommendation]:
    """One :class:`Recommendation` per taste, in order."""
    out: list[Recommendation | None] = [None] * len(tastes)
    seeds: dict[int, int] = {}
    asked: list[int] = []
    for i, taste in enumerate(tastes):
        seed = _radio_seed(index, taste)
        if seed is not None:
            seeds[i] = seed
        else:
            asked.append(i)
    queries: dict[int, _Query] = {}
    for i, query in zip(asked, _queries(index, [tastes[i] for i in asked]), strict=True):
        if query is None:
            out[i] = Recommendation("taste", [])
        else:
            queries[i] = query
    if queries:
        order = list(queries)
        z = np.stack([queries[i].z for i in order])
        hits = index.nearest(index.project(z), k=POOL * k, exclude=[queries[i].excluded for i in order])
        chosen = _choose(index, [queries[i] for i in order], hits, k=k, max_per_artist=max_per_artist)
        for i, rec in zip(
            order, _items(index, [tastes[i] for i in order], [queries[i] for i in order], chosen), strict=True
        ):
            out[i] = rec
    if seeds:
        for i, rec in zip(seeds, _radios(index, list(seeds.values()), k=k), strict=True):
            out[i] = rec
    return [r if r is not None else Recommendation("taste", []) for r in out]


def _radio_seed(index: Index, taste: Taste) -> int | None:
    """The liked track a radio starts from when it is the one indexed track the listener has heard, else None."""
    if not taste.positives or taste.neg_w != 0 or taste.positives[-1] not in index:
        return None
    heard: set[int] = set()
    for t in taste.recent:  # stops at a second indexed track: most listeners have heard many
        if t in index:
            heard.add(t)
            if len(heard) > 1:
                return None
    return taste.positives[-1] if heard else None


def _radios(index: Index, seeds: list[int], *, k: int) -> list[Recommendation]:
    stations = index.radio(seeds, length=k)
    out = []
    for seed, station in zip(seeds, stations, strict=True):
        title = _title(index, seed)
        out.append(
            Recommendation(
                "radio", [_item(index, n.track_id, n.score, f"song radio from {title}; {n.reason}") for n in station]
            )
        )
    return out


def _queries(index: Index, tastes: Sequence[Taste]) -> list[_Query | None]:
    """Each taste's query, standardized all at once (None: nothing to ask yet).

    The same values, bit for bit, as one taste at a time: standardizing and moving away are element-wise
    (each row's weight a float32, as a float times a float32 vector gives), and the pushed centre is
    projected one row at a time, so an answer does not depend on the batch it was asked in. A taste whose
    centre is not finite (NaN from a broken track) or was folded in another index space (``index.space``
    changed: it starts again with its next event) has no query.
    """
    width = len(index.manifest.columns)
    pos = [_centre(t, "pos", width) for t in tastes]
    neg = [_centre(t, "neg", width) for t in tastes]
    z_pos, pos_ok = _standardized(index, pos, width)
    z_neg, neg_ok = _standardized(index, neg, width)
    has_pos = np.asarray([c is not None for c in pos], bool)
    pushed = np.asarray([c is not None for c in neg], bool)
    z_pos[~has_pos] = 0.0  # nothing pulled: the query starts at the middle of the space
    shares = np.asarray([t.negative_share() for t in tastes], np.float64)
    away = (AWAY * shares).astype(np.float32)[:, None]
    z = np.where(pushed[:, None], z_pos + away * (z_pos - z_neg), z_pos)
    out: list[_Query | None] = []
    for i, taste in enumerate(tastes):
        if not (has_pos[i] or pushed[i]) or not (pos_ok[i] and neg_ok[i]):
            out.append(None)
            continue
        p_neg = index.project(z_neg[i]) if pushed[i] else None
        out.append(_Query(z[i], p_neg, float(shares[i]), set(taste.recent) | set(taste.disliked)))
    return out


def _centre(taste: Taste, which: str, width: int) -> np.ndarray | None:
    """The taste's pulled or pushed centre in raw units when it has one of the index's width, else None."""
    centre = taste.centre(which)
    return centre if centre is not None and len(centre) == width else None


def _standardized(index: Index, centres: list[np.ndarray | None], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(the centres standardized as float32 rows, which rows are usable): one array operation for them all,
    element by element as one at a time. Rows without a centre, or with one that is not finite, hold the
    middle of the space's raw units standardized (unused) and are marked False where not finite."""
    raw = np.zeros((len(centres), width), np.float64)
    for i, c in enumerate(centres):
        if c is not None:
            raw[i] = c
    finite = np.isfinite(raw).all(axis=1)
    raw[~finite] = 0.0
    return index.standardize(raw), finite


def _choose(index: Index, queries: list[_Query], hits: Hits, *, k: int, max_per_artist: int) -> Hits:
    """Each query's pool re-ranked away from what pushed, at most ``max_per_artist`` per artist, its first ``k``.

    All queries at once: the ranking, the artist cap and the cut are array operations over the flat hits.
    """
    if not len(hits):
        return hits
    rank = hits.distances.astype(np.float64)
    pushed = np.asarray([q.p_neg is not None for q in queries])
    if pushed.any():  # far from what was skipped, as much as skips weigh
        dims = index.manifest.dims
        p_neg = np.stack([q.p_neg if q.p_neg is not None else np.zeros(dims, np.float32) for q in queries])
        weight = np.asarray([PUSH * q.share for q in queries], np.float32)
        sel = np.flatnonzero(pushed[hits.query])
        points = index.points(hits.items[sel])
        owner = hits.query[sel]
        rank[sel] = rank[sel] - weight[owner] * np.linalg.norm(points - p_neg[owner], axis=1)
    ranked = hits.take(np.lexsort((hits.track_ids, rank, hits.query)))
    artist = index.artists()[ranked.items]
    place = np.arange(len(ranked))
    # How many earlier places of the same listener went to the same artist (-1: no artist, never capped).
    by_artist = np.lexsort((place, artist, ranked.query))
    o, a = ranked.query[by_artist], artist[by_artist]
    run = np.concatenate([[True], (o[1:] != o[:-1]) | (a[1:] != a[:-1])])
    run_start = np.maximum.accumulate(np.where(run, np.arange(len(o)), 0))
    earlier = np.empty(len(o), np.int64)
    earlier[by_artist] = np.arange(len(o)) - run_start
    kept = ranked.take((artist < 0) | (earlier < max_per_artist))
    first = np.searchsorted(kept.query, kept.query)
    return kept.take(np.arange(len(kept)) - first < k)


def _items(index: Index, tastes: list[Taste], queries: list[_Query], chosen: Hits) -> list[Recommendation]:
    """Items with their reasons for every listener at once: array work over all the chosen tracks.

    Each listener's answer is kept as the serving store's parallel arrays (:func:`stored_items`);
    the dict per item is only built when someone asks for ``items``.
    """
    n = len(queries)
    if not n:
        return []
    bounds = np.searchsorted(chosen.query, np.arange(n + 1)).tolist()
    why = index.explain(np.stack([q.z for q in queries]), chosen.query, chosen.items)
    reasons = (_because(index, tastes, queries, chosen) + why).tolist()
    genres = index.genres()[chosen.items].tolist()
    scores = [round(s, 4) for s in (1.0 / (1.0 + chosen.distances.astype(np.float64))).tolist()]
    ids = chosen.track_ids.tolist()
    return [
        Recommendation.of_columns(
            "taste",
            {"track_id": ids[a:b], "score": scores[a:b], "reason": reasons[a:b], "genre": genres[a:b]},
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _because(index: Index, tastes: list[Taste], queries: list[_Query], chosen: Hits) -> np.ndarray:
    """Each chosen item's first words: the liked track it sounds most like, or that it is away from the skipped."""
    away = np.asarray(["away from what you skipped; " if q.p_neg is not None else "" for q in queries], object)
    because = away[chosen.query]
    # The latest LIKED liked tracks of each listener that are in the index, oldest first: a (listener,
    # LIKED) table of places in one flat array of them; -1 pads.
    counts = [len(t.positives) for t in tastes]
    positives = np.fromiter((p for t in tastes for p in t.positives), np.int64, count=sum(counts))
    owner = np.repeat(np.arange(len(tastes)), counts)
    liked = index.items(positives)
    found = liked >= 0
    positives, owner, liked = positives[found], owner[found], liked[found]
    if not len(positives) or not len(chosen):
        return because
    starts = np.searchsorted(owner, np.arange(len(tastes) + 1))
    place = np.arange(len(owner)) - starts[owner]
    skip = np.maximum(np.diff(starts) - LIKED, 0)[owner]  # older than the latest LIKED
    keep = place >= skip
    positives, owner, liked, column = positives[keep], owner[keep], liked[keep], (place - skip)[keep]
    table = np.full((len(tastes), LIKED), -1, np.int64)
    table[owner, column] = np.arange(len(owner))
    mine = table[chosen.query]  # (items, LIKED)
    has = np.flatnonzero(mine[:, 0] >= 0)
    nearest = index.nearest_among(chosen.items[has], liked, mine[has])
    tracks, which = np.unique(positives[nearest], return_inverse=True)
    said = _liked_phrases.setdefault(index, {})
    phrases = np.asarray([said.get(t) or _liked_phrase(index, said, t) for t in tracks.tolist()], object)
    because[has] = phrases[which.reshape(-1)]
    return because


def _liked_phrase(index: Index, said: dict[int, str], track_id: int) -> str:
    phrase = said[track_id] = f"sounds like {_title(index, track_id)}, which you liked; "
    return phrase


def _title(index: Index, track_id: int) -> str:
    track = index.catalogue.get(track_id)
    return f"'{track.title}'" if track else f"track {track_id}"


def _item(index: Index, track_id: int, score: float, reason: str) -> dict:
    track = index.catalogue.get(track_id)
    return {
        "track_id": int(track_id),
        "score": round(float(score), 4),  # closeness to the taste: 1 / (1 + distance)
        "reason": reason,
        "genre": track.genre if track else None,
    }
