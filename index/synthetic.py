"""A synthetic catalogue with genre structure in the real feature space: tests, benchmarks, simulations.

Each genre has a centre in raw feature units; its artists sit near it and their
tracks near them, so an index built over it separates genres the way real audio
features do (less cleanly at a higher ``spread``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from udfs.schema import FEATURE_COLUMNS

COLUMNS = [*FEATURE_COLUMNS, "tempo"]
GENRES = ("Rock", "Electronic", "Hip-Hop", "Folk", "Jazz", "Classical", "Pop", "Experimental")


def synthetic_catalogue(
    *,
    genres: int = 8,
    per_genre: int = 40,
    artists_per_genre: int = 4,
    spread: float = 0.6,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(track ids, raw feature rows, catalogue frame with track_id/title/artist_name/genre_top)."""
    rng = np.random.default_rng(seed)
    dims = len(COLUMNS)
    offset = rng.uniform(-5, 5, size=dims)
    scale = rng.uniform(0.5, 3.0, size=dims)
    ids, rows, meta = [], [], []
    track = 1
    for g in range(genres):
        name = GENRES[g] if g < len(GENRES) else f"Genre {g + 1}"
        centre = rng.normal(size=dims)
        for a in range(artists_per_genre):
            artist_centre = centre + rng.normal(scale=spread * 0.5, size=dims)
            for _ in range(per_genre // artists_per_genre):
                rows.append(offset + scale * (artist_centre + rng.normal(scale=spread, size=dims)))
                ids.append(track)
                meta.append((track, f"{name} song {track}", f"{name} artist {a + 1}", name))
                track += 1
    frame = pd.DataFrame(meta, columns=["track_id", "title", "artist_name", "genre_top"])
    return np.asarray(ids, dtype=np.int64), np.asarray(rows, dtype=np.float64), frame
