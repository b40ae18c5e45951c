"""A listener population for the freshness benchmark: tastes written straight into a Parquet seed file.

``stream --initial-tastes PATH`` loads such a file into a new checkpoint's
state store, so the benchmark can run against a million listeners' tastes
without simulating their history. Each seeded listener liked ``LIKES`` tracks
of their favourite genres (the simulator's listeners keep the favourites the
simulator gave them; the rest get random ones), so what they are recommended
can be judged against what they like.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from index.reader import Index
from recommend.taste import WEIGHTS, Taste

LIKES = 10
CHUNK = 20_000


def write_initial_tastes(
    path: Path,
    index: Index,
    *,
    favourites: Sequence[tuple[str, set[str]]],
    total: int,
    prefix: str = "seed",
    seed: int = 0,
    now_ms: int,
) -> int:
    """Write ``total`` listeners' tastes: ``favourites`` (user id, genres) first, then ``prefix``-N listeners."""
    rng = np.random.default_rng(seed)
    catalogue = index.catalogue
    genres = [g for g in catalogue.genres() if catalogue.ids_of_genre(g)]
    by_genre = {g: np.asarray(catalogue.ids_of_genre(g), dtype=np.int64) for g in genres}
    ids = index.track_ids()
    raw = index.vectors(np.arange(len(index)), raw=True)  # item order: the order of ids
    row_of = {int(t): i for i, t in enumerate(ids)}
    path.mkdir(parents=True, exist_ok=True)
    pools: dict[tuple[str, ...], np.ndarray] = {}  # the tracks of each set of liked genres (a catalogue's worth)
    written = 0
    part = 0
    while written < total:
        n = min(CHUNK, total - written)
        users, tastes = [], []
        for j in range(written, written + n):
            if j < len(favourites):
                user, liked_genres = favourites[j]
            else:
                user, liked_genres = f"{prefix}-{j:07d}", set(rng.choice(genres, size=1 + j % 2, replace=False))
            key = tuple(sorted(liked_genres))
            pool = pools.get(key)
            if pool is None:
                pool = pools[key] = np.concatenate([by_genre[g] for g in key])
            liked = rng.choice(pool, size=min(LIKES, len(pool)), replace=False)
            users.append(user)
            tastes.append(_taste(liked, raw, row_of, catalogue, now_ms=now_ms).to_bytes())
        table = pa.table({"user_id": pa.array(users, pa.string()), "taste": pa.array(tastes, pa.binary())})
        pq.write_table(table, path / f"part-{part:05d}.parquet")
        written += n
        part += 1
    return written


def _taste(liked: np.ndarray, raw: np.ndarray, row_of: dict[int, int], catalogue, *, now_ms: int) -> Taste:
    """The taste of a listener who liked ``liked`` an hour ago, without folding each event."""
    weight = WEIGHTS["like"]
    vectors = raw[[row_of[int(t)] for t in liked]]
    pos = (weight * vectors.sum(axis=0)).astype(np.float32)
    taste = Taste(dims=raw.shape[1], pos=pos, pos_w=weight * len(liked))
    taste.neg = np.zeros(raw.shape[1], np.float32)
    taste.last_ts_ms = now_ms - 3_600_000
    taste.counts = {"like": len(liked)}
    for t in liked.tolist():
        genre = catalogue.get(t).genre
        taste.genre_score[genre] = taste.genre_score.get(genre, 0.0) + weight
    taste.recent = [int(t) for t in liked]
    taste.positives = [int(t) for t in liked]
    return taste
