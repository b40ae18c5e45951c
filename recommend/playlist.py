"""Playlists: from a seed track, a mood or a listener's taste, ordered to flow.

A playlist is chosen in two steps. First a pool of candidates, ``POOL`` per
place: the seed's nearest tracks, the tracks whose mood axes are nearest the
asked mood, or the listener's recommendations. Then :func:`flow` orders them:
from the first track, each next one is the nearest unused candidate to the
previous (in the index space) whose artist differs from the previous one's, so
neighbours sound alike and no artist plays twice in a row. A pool that runs out
of other artists ends the playlist early rather than break that rule.

Moods are the steering axes (tempo, energy, brightness) plus noisiness (the
zero-crossing rate), each asked for from -1 (low) to 1 (high). A track's place
on an axis is its percentile in the catalogue, so an axis in beats per minute
and one in decibels weigh alike; -1 aims at the 5th percentile, 0 at the
median, 1 at the 95th. Where the index's space holds these features (the
``features`` space) they are read from it (:func:`moods_from_index`); otherwise
from the ``features`` subdocument of Mongo ``tracks`` (the dashboard's
``data.mood_table``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from index.reader import Index
from recommend.rank import recommend_many
from recommend.taste import Taste
from udfs.schema import MOOD_AXES

# Each axis: the feature column in the index's space, and the key of Mongo ``tracks.features`` (the axis).
AXES: dict[str, tuple[str, str]] = {axis: (column, axis) for axis, column in MOOD_AXES.items()}
POOL = 3  # candidates per place in the playlist
MAX_LENGTH = 200
REACH = 0.45  # how far from the median percentile a mood of -1 or 1 aims


class PlaylistError(ValueError):
    """A playlist that cannot be made (an unknown seed, no taste yet, no mood features); says why."""


def flow(
    index: Index,
    candidates: Sequence[int],
    *,
    length: int,
    artist_of: Mapping[int, object] | None = None,
) -> list[int]:
    """``candidates`` (the first is the opening track) reordered to flow, at most ``length`` of them."""
    _check_length(length)
    ids = list(dict.fromkeys(int(t) for t in candidates))
    items = index.items(ids)
    ids = [t for t, i in zip(ids, items.tolist(), strict=True) if i >= 0]
    if not ids:
        return []
    points = index.points(items[items >= 0]).astype(np.float64)
    artist_of = artist_of or {}
    artists = np.asarray([artist_of.get(t) for t in ids], object)
    free = np.ones(len(ids), bool)
    at = 0
    order = [ids[0]]
    free[0] = False
    while len(order) < length:
        allowed = free & ((artists != artists[at]) | (artists == None))  # noqa: E711 - element-wise on objects
        if not allowed.any():
            break
        d = ((points - points[at]) ** 2).sum(axis=1)
        d[~allowed] = np.inf
        at = int(np.argmin(d))  # the first of equals: candidates keep their order on a tie
        order.append(ids[at])
        free[at] = False
    return order


def from_seed(index: Index, seed: int, *, length: int, artist_of: Mapping[int, object] | None = None) -> list[int]:
    """A playlist that opens with ``seed`` and flows through its neighbours."""
    _check_length(length)
    if int(seed) not in index:
        raise PlaylistError(f"track {seed} is not in the index: it has no features yet")
    near = index.similar(int(seed), k=min(len(index) - 1, POOL * length)) if len(index) > 1 else []
    return flow(index, [int(seed), *(n.track_id for n in near)], length=length, artist_of=artist_of)


def from_taste(index: Index, taste: Taste, *, length: int, artist_of: Mapping[int, object] | None = None) -> list[int]:
    """A playlist from a listener's recommendations (their best match first), reordered to flow."""
    _check_length(length)
    (rec,) = recommend_many(index, [taste], k=POOL * length, max_per_artist=max(3, length // 4))
    ids = rec.columns["track_id"]
    if not ids:
        raise PlaylistError("no taste to go on yet: play, finish or like a few tracks first")
    return flow(index, ids, length=length, artist_of=artist_of)


def from_recommendations(
    index: Index, track_ids: Sequence[int], *, length: int, artist_of: Mapping[int, object] | None = None
) -> list[int]:
    """A playlist from a listener's served recommendations (the dashboard's "my taste"), topped up with their
    nearest tracks when they are fewer than the pool, ordered to flow from the first."""
    _check_length(length)
    ids = [int(t) for t in track_ids if int(t) in index]
    if not ids:
        raise PlaylistError("no recommendations to go on yet: play, finish or like a few tracks first")
    pool = list(dict.fromkeys(ids))
    for t in ids:
        if len(pool) >= POOL * length:
            break
        pool += [n.track_id for n in index.similar(t, k=POOL, exclude=pool)]
    return flow(index, pool, length=length, artist_of=artist_of)


def from_mood(
    index: Index,
    moods: pd.DataFrame,
    mood: Mapping[str, float],
    *,
    length: int,
    artist_of: Mapping[int, object] | None = None,
) -> list[int]:
    """A playlist of the indexed tracks nearest ``mood`` (axis -> -1..1) on the mood axes, ordered to flow.

    ``moods`` has a ``track_id`` column and one column per axis it knows (raw values; NaN where a track
    has none). Axes missing from ``mood`` are left free; a mood that names an axis the catalogue lacks
    is refused.
    """
    _check_length(length)
    asked = {a: float(v) for a, v in mood.items()}
    unknown = sorted(set(asked) - set(AXES))
    if unknown:
        raise PlaylistError(f"unknown mood axis {', '.join(unknown)}; the axes are {', '.join(AXES)}")
    for axis, value in asked.items():
        if not -1.0 <= value <= 1.0:
            raise PlaylistError(f"mood {axis} must be between -1 and 1, got {value}")
    missing = [a for a in asked if a not in moods or moods[a].isna().all()]
    if missing:
        raise PlaylistError(f"the catalogue has no {', '.join(missing)} to choose by (features not extracted yet)")
    table = moods[index.items(moods["track_id"].to_numpy(np.int64)) >= 0].reset_index(drop=True)
    if table.empty:
        raise PlaylistError("no indexed track has mood features yet")
    distance = np.zeros(len(table))
    for axis, value in asked.items():
        place = table[axis].rank(pct=True).fillna(0.5).to_numpy()  # a track without the value sits in the middle
        distance += (place - (0.5 + REACH * value)) ** 2
    nearest = np.lexsort((table["track_id"].to_numpy(), distance))[: POOL * length]
    return flow(index, table["track_id"].to_numpy()[nearest].tolist(), length=length, artist_of=artist_of)


def moods_from_index(index: Index) -> pd.DataFrame | None:
    """Every indexed track's mood axes from the index's own features, or None when its space lacks them."""
    columns = list(index.manifest.columns)
    axes = {a: columns.index(col) for a, (col, _) in AXES.items() if col in columns}
    if not axes:
        return None
    raw = index.vectors(np.arange(len(index)), raw=True)
    frame = {"track_id": index.track_ids()}
    for axis, at in axes.items():
        frame[axis] = raw[:, at]
    return pd.DataFrame(frame)


def _check_length(length: int) -> None:
    if not 1 <= int(length) <= MAX_LENGTH:
        raise PlaylistError(f"a playlist has 1 to {MAX_LENGTH} tracks, not {length}")
