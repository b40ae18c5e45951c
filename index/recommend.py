"""Recommendations from a taste: query the index near what pulled, away from what pushed.

- Cold start: a listener whose history is a single liked or finished track
  gets a song radio around it.
- Otherwise the query point, in standardized units, is the centre of the pulled
  tracks moved away from the centre of the pushed ones (by the share of
  pushing weight); candidates are ranked by distance to it less their distance
  from the pushed centre (weighted by that share), heard
  and disliked tracks are left out, and no artist takes more than
  ``max_per_artist`` places.
- Each item says why: the liked track it sounds most like and the feature groups
  that are close.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from index.query import Neighbour, SimilarityIndex
from index.radio import radio
from index.taste import Taste

AWAY = 1.0  # how far past the pulled centre the query moves, at a fully negative history
PUSH = 1.5  # weight of the distance from the pushed centre in the ranking, at a fully negative history


@dataclass(frozen=True)
class Recommendation:
    source: str  # "taste" or "radio"
    items: list[dict]


def recommend(index: SimilarityIndex, taste: Taste, *, k: int = 20, max_per_artist: int = 3) -> Recommendation:
    catalogue = index.catalogue
    heard = [t for t in taste.recent if t in index]
    if len(set(heard)) == 1 and taste.positives and taste.neg_w == 0 and taste.positives[-1] in index:
        seed = taste.positives[-1]
        station = radio(index, seed, length=k, artist_of=catalogue.artist_of())
        title = _title(index, seed)
        return Recommendation("radio", [_item(index, n, f"song radio from {title}; {n.reason}") for n in station])
    pos, neg = taste.centre("pos"), taste.centre("neg")
    if pos is None and neg is None:
        return Recommendation("taste", [])
    share = taste.negative_share()
    z_pos = index.standardize(pos) if pos is not None else np.zeros(len(index.manifest.columns), np.float32)
    z_neg = index.standardize(neg) if neg is not None else None
    query_z = z_pos if z_neg is None else z_pos + AWAY * share * (z_pos - z_neg)
    query_p = index.project(query_z)
    excluded = set(taste.recent) | set(taste.disliked)
    pool = index.query_projected(query_p, k=3 * k, exclude=excluded)  # reasons only for the chosen
    p_neg = index.project(z_neg) if z_neg is not None else None
    liked = [t for t in taste.positives if t in index][-10:]
    liked_p = np.stack([index.projected_of(t) for t in liked]) if liked else None

    ranked: list[tuple[float, Neighbour]] = []
    for n in pool:
        rank = n.distance  # near the taste first ...
        if p_neg is not None:  # ... and far from what was skipped, as much as skips weigh
            rank -= PUSH * share * float(np.linalg.norm(index.projected_of(n.track_id) - p_neg))
        ranked.append((rank, n))
    ranked.sort(key=lambda rn: (rn[0], rn[1].track_id))
    per_artist: Counter = Counter()
    items = []
    for _, n in ranked:
        track = catalogue.get(n.track_id)
        artist = track.artist if track else None
        if artist and per_artist[artist] >= max_per_artist:
            continue
        per_artist[artist] += 1
        because = ""
        if liked_p is not None:
            nearest = liked[int(np.argmin(((liked_p - index.projected_of(n.track_id)) ** 2).sum(axis=1)))]
            because = f"sounds like {_title(index, nearest)}, which you liked; "
        elif p_neg is not None:
            because = "away from what you skipped; "
        items.append(_item(index, n, because + index.reason_for(query_z, n.track_id)))
        if len(items) == k:
            break
    return Recommendation("taste", items)


def _title(index: SimilarityIndex, track_id: int) -> str:
    track = index.catalogue.get(track_id)
    return f"'{track.title}'" if track else f"track {track_id}"


def _item(index: SimilarityIndex, n: Neighbour, reason: str) -> dict:
    track = index.catalogue.get(n.track_id)
    return {
        "track_id": n.track_id,
        "score": round(float(n.score), 4),  # closeness to the taste: 1 / (1 + distance)
        "reason": reason,
        "title": track.title if track else None,
        "artist": track.artist if track else None,
        "genre": track.genre if track else None,
    }
