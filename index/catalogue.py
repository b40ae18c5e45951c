"""The catalogue snapshot kept in each index version: what a track is called, who made it, its genre.

``build-index`` copies the Delta ``tracks`` table's ``track_id``, ``title``,
``artist_name`` and ``genre_top`` into ``catalogue.parquet`` beside the shards,
so the stream, the simulator and the dashboard check ids and explain results
against the same catalogue as the index they query. A version without the file
(features imported without a catalogue) falls back to the indexed ids alone.
Names are searched as :func:`folded` gives them (the dashboard's and the player apps' search).
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

CATALOGUE_FILE = "catalogue.parquet"
COLUMNS = ("track_id", "title", "artist_name", "genre_top")
# Letters that carry no accent to drop but that a keyboard without them spells otherwise ("Royksopp", "Mo").
SPELLED = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "þ": "th", "ł": "l", "ı": "i"})


def folded(text: str) -> str:
    """``text`` as search compares it: without case or accents, so that "bjork" finds Björk and "sigur ros" Sigur
    Rós (NFKD, the combining marks dropped, then :data:`SPELLED`)."""
    if text.isascii():  # most names: nothing to decompose
        return text.lower()
    return _folded_accented(text)


@functools.lru_cache(maxsize=1 << 18)  # searches ask again for the same names (a reload of the server's library too)
def _folded_accented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(SPELLED)


def write_catalogue(folder: Path, tracks: pd.DataFrame) -> None:
    missing = [c for c in COLUMNS if c not in tracks.columns]
    if missing:
        raise ValueError(f"catalogue needs columns {', '.join(missing)}")
    frame = tracks.loc[:, list(COLUMNS)].drop_duplicates("track_id").astype({"track_id": "int64"})
    frame.to_parquet(Path(folder) / CATALOGUE_FILE, index=False)


@dataclass(frozen=True)
class Track:
    track_id: int
    title: str
    artist: str
    genre: str


@dataclass
class Catalogue:
    tracks: dict[int, Track] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path, indexed_ids: np.ndarray) -> Catalogue:
        path = Path(folder) / CATALOGUE_FILE
        if not path.exists():
            return cls({int(t): Track(int(t), f"track {int(t)}", "unknown", "unknown") for t in indexed_ids})
        frame = pd.read_parquet(path)
        return cls(
            {
                int(r.track_id): Track(
                    int(r.track_id),
                    str(r.title or f"track {int(r.track_id)}"),
                    str(r.artist_name or "unknown"),
                    str(r.genre_top or "unknown"),
                )
                for r in frame.itertuples(index=False)
            }
        )

    def __contains__(self, track_id: int) -> bool:
        return int(track_id) in self.tracks

    def __len__(self) -> int:
        return len(self.tracks)

    def get(self, track_id: int) -> Track | None:
        return self.tracks.get(int(track_id))

    def artist_of(self) -> dict[int, str]:
        """Track id -> artist, built once per catalogue (the stream asks for it every batch)."""
        cached = self.__dict__.get("_artist_of")
        if cached is None:
            cached = self.__dict__["_artist_of"] = {t: tr.artist for t, tr in self.tracks.items()}
        return cached

    def ids_of_genre(self, genre: str) -> list[int]:
        return [t for t, tr in self.tracks.items() if tr.genre == genre]

    def genres(self) -> list[str]:
        return sorted({tr.genre for tr in self.tracks.values()})
