"""Song radio: from a seed track, a list that stays close to it without repeating itself or one artist.

:func:`radio_many` builds many stations at once (the stream's new listeners of
a micro-batch): each step searches the next track of every station with one
batched search (:func:`index.batched.nearest_many`) instead of one query per
station. Read through :meth:`index.reader.Index.radio`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from index.batched import nearest_many
from index.query import Neighbour, SimilarityIndex


def radio_many(
    index: SimilarityIndex,
    seeds: Sequence[int],
    *,
    length: int = 20,
    artist_of: Mapping[int, object] | None = None,
    max_per_artist: int = 2,
    artist_gap: int = 3,
    pool: int = 40,
    drift: float = 0.35,
) -> list[list[Neighbour]]:
    """One ordered station of ``length`` tracks after each seed, every step of all stations searched together.

    Each next track is the nearest unplayed one to a point between the seed and
    the last track (``drift`` of the way to the last one), so the station moves
    but stays anchored. No track repeats; an artist plays at most
    ``max_per_artist`` times and not within ``artist_gap`` tracks of itself (the
    seed's artist included), falling back to the nearest track when nothing
    else is left.
    """
    artist_of = artist_of or {}
    n = len(seeds)
    if not n:
        return []
    seed_p = np.stack([index.projected_of(int(s)) for s in seeds]).astype(np.float32)
    last_p = seed_p.copy()
    played = [[int(s)] for s in seeds]
    artists = [[artist_of.get(int(s))] for s in seeds]
    picks: list[list[tuple[int, float, int]]] = [[] for _ in range(n)]  # track, distance, item
    active = list(range(n))
    for _ in range(length):
        if not active:
            break
        anchors = (1 - drift) * seed_p[active] + drift * last_p[active]
        # The nearest shard is enough for a step (a station short of tracks there widens): a station is one
        # batched search per step, 20 steps for each new listener of a micro-batch.
        pools = nearest_many(index, anchors, k=pool, exclude=[set(played[i]) for i in active], probe=1)
        still = []
        for i, found in zip(active, pools, strict=True):
            if not len(found):
                continue
            choice = _first_allowed(found.track_ids.tolist(), artist_of, artists[i], max_per_artist, artist_gap)
            track = int(found.track_ids[choice])
            picks[i].append((track, float(found.distances[choice]), int(found.items[choice])))
            played[i].append(track)
            artists[i].append(artist_of.get(track))
            last_p[i] = index.points_of(found.items[choice : choice + 1])[0]
            still.append(i)
        active = still
    return [_station(index, seed, chosen) for seed, chosen in zip(seeds, picks, strict=True)]


def _first_allowed(
    tracks: list[int], artist_of: Mapping[int, object], played: list, max_per_artist: int, artist_gap: int
) -> int:
    """The place of the first of ``tracks`` whose artist may play next after ``played`` (0 when none may)."""
    counts = Counter(a for a in played if a is not None)
    recent = set(played[-artist_gap:])
    for j, t in enumerate(tracks):
        a = artist_of.get(t)
        if a is None or (a not in recent and counts[a] < max_per_artist):
            return j
    return 0


def _station(index: SimilarityIndex, seed: int, chosen: list[tuple[int, float, int]]) -> list[Neighbour]:
    """The picks (track, distance, item) as neighbours, each with why it is near the seed."""
    if not chosen:
        return []
    items = np.asarray([c[2] for c in chosen], np.int64)
    reasons = index.explain_many(index.standardized_of(int(seed)), index.vectors_of(items))
    return [Neighbour(t, d, round(1.0 / (1.0 + d), 4), r) for (t, d, _), r in zip(chosen, reasons, strict=True)]
