"""Song radio: from a seed track, a list that stays close to it without repeating itself or one artist."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from index.query import Neighbour, SimilarityIndex


def radio(
    index: SimilarityIndex,
    seed_track: int,
    *,
    length: int = 20,
    artist_of: Mapping[int, object] | None = None,
    max_per_artist: int = 2,
    artist_gap: int = 3,
    pool: int = 40,
    drift: float = 0.35,
) -> list[Neighbour]:
    """An ordered station of ``length`` tracks after ``seed_track``.

    Each next track is the nearest unplayed one to a point between the seed and
    the last track (``drift`` of the way to the last one), so the station moves
    but stays anchored. No track repeats; an artist plays at most
    ``max_per_artist`` times and not within ``artist_gap`` tracks of itself (the
    seed's artist included), falling back to the nearest track when nothing
    else is left.
    """
    artist_of = artist_of or {}
    seed_p = index.projected_of(seed_track)
    seed_z = index.standardized_of(seed_track)
    played = [int(seed_track)]
    artists = [artist_of.get(int(seed_track))]
    station: list[Neighbour] = []
    last_p = seed_p
    for _ in range(length):
        anchor = (1 - drift) * seed_p + drift * last_p
        candidates = index.query_projected(anchor.astype(np.float32), k=pool, exclude=played, reference=seed_z)
        if not candidates:
            break
        counts = Counter(a for a in artists if a is not None)
        recent = set(artists[-artist_gap:])

        def allowed(n: Neighbour, recent: set = recent, counts: Counter = counts) -> bool:
            a = artist_of.get(n.track_id)
            return a is None or (a not in recent and counts[a] < max_per_artist)

        pick = next((n for n in candidates if allowed(n)), candidates[0])
        station.append(pick)
        played.append(pick.track_id)
        artists.append(artist_of.get(pick.track_id))
        last_p = index.projected_of(pick.track_id)
    return station
