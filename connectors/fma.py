"""FMA's metadata formats, in pandas: tracks.csv, genres.csv, features.csv and the audio layout.

- ``tracks.csv`` has three header lines (two column levels and an index-name
  line): load with ``header=[0, 1], index_col=0``. Free-text fields hold HTML
  with commas, quotes and newlines inside quoted fields.
- ``genres``, ``genres_all`` and ``tags`` are Python-literal lists.
- ``set.subset`` is small < medium < large (small tracks are in medium and large).
- Audio lives at ``<root>/<first 3 digits>/<6-digit id>.mp3``.
- ``features.csv`` has three column levels (feature, statistics, number) plus
  the index-name line: ``header=[0, 1, 2], index_col=0``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from connectors.audio import AUDIO_TYPES

SUBSETS = ("small", "medium", "large")
AUDIO_EXTENSIONS = tuple(suffix.lstrip(".") for suffix in AUDIO_TYPES)


class FmaFormatError(ValueError):
    """A file does not have the FMA layout; the message says what is off."""


def audio_relpath(track_id: int, ext: str = "mp3") -> str:
    tid = f"{int(track_id):06d}"
    return f"{tid[:3]}/{tid}.{ext}"


def track_id_from_path(path: str) -> int | None:
    """The track id of an FMA-layout audio path (``.../012/012345.mp3`` -> 12345), else None."""
    parts = path.rstrip("/").rsplit("/", 2)
    if len(parts) < 2:
        return None
    stem, _, ext = parts[-1].rpartition(".")
    if ext.lower() not in AUDIO_EXTENSIONS or len(stem) != 6 or not stem.isdigit():
        return None
    if parts[-2] != stem[:3]:
        return None
    return int(stem)


def parse_list(cell: object) -> list:
    """A Python-literal list cell (``"[21, 76]"``); empty or missing cells give []."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() == "":
        return []
    value = ast.literal_eval(str(cell))
    if not isinstance(value, list):
        raise FmaFormatError(f"expected a list literal, got {cell!r}")
    return value


def write_tracks_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path)


def write_genres_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def load_tracks(path: str | Path) -> pd.DataFrame:
    """tracks.csv with its two column levels, indexed by track id."""
    try:
        frame = pd.read_csv(path, index_col=0, header=[0, 1], low_memory=False)
    except (OSError, ValueError) as exc:
        raise FmaFormatError(f"{path}: cannot read as FMA tracks.csv ({exc})") from None
    needed = [("track", "title"), ("track", "genre_top"), ("artist", "name"), ("set", "subset")]
    missing = [".".join(c) for c in needed if c not in frame.columns]
    if missing:
        raise FmaFormatError(f"{path}: not an FMA tracks.csv, missing columns {', '.join(missing)}")
    frame.index = frame.index.astype("int64")
    return frame


def load_genres(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    needed = {"genre_id", "parent", "title", "top_level"}
    if not needed <= set(frame.columns):
        raise FmaFormatError(f"{path}: not an FMA genres.csv, needs columns {', '.join(sorted(needed))}")
    return frame


def in_subset(subsets: pd.Series, wanted: str) -> pd.Series:
    """Rows that belong to ``wanted``: small is in medium and large, medium in large."""
    if wanted not in SUBSETS:
        raise FmaFormatError(f"unknown subset {wanted!r}; choose one of {', '.join(SUBSETS)}")
    rank = {name: i for i, name in enumerate(SUBSETS)}
    return subsets.map(lambda s: rank.get(str(s), len(SUBSETS))) <= rank[wanted]


def catalogue_from_fma(tracks: pd.DataFrame, genres: pd.DataFrame, *, subset: str) -> pd.DataFrame:
    """The flat catalogue rows (without audio locations) of one subset."""
    picked = tracks[in_subset(tracks[("set", "subset")], subset)]
    titles = dict(zip(genres["genre_id"].astype(int), genres["title"].astype(str), strict=True))

    def text(col: tuple[str, str]) -> pd.Series:
        return picked[col].astype("string").fillna("")

    def number(col: tuple[str, str]) -> object:
        if col not in picked.columns:
            return pd.array([pd.NA] * len(picked), dtype="Int64")
        return pd.to_numeric(picked[col], errors="coerce").astype("Int64").to_numpy()

    def year(col: tuple[str, str]) -> object:
        if col not in picked.columns:
            return pd.array([pd.NA] * len(picked), dtype="Int64")
        return pd.to_datetime(picked[col], errors="coerce").dt.year.astype("Int64").to_numpy()

    genre_ids = picked[("track", "genres")].map(lambda c: [int(x) for x in parse_list(c)])
    genres_all = picked[("track", "genres_all")].map(lambda c: [int(x) for x in parse_list(c)])
    return pd.DataFrame(
        {
            "track_id": picked.index.astype("int64"),
            "title": text(("track", "title")).to_numpy(),
            "artist_id": pd.to_numeric(picked[("artist", "id")], errors="coerce").astype("Int64").to_numpy(),
            "artist_name": text(("artist", "name")).to_numpy(),
            "album_title": text(("album", "title")).to_numpy(),
            "genre_top": picked[("track", "genre_top")].astype("string").to_numpy(),
            "genre_ids": genre_ids.to_numpy(),
            "genres_all": genres_all.to_numpy(),
            "genre_names": genres_all.map(lambda ids: [titles.get(g, str(g)) for g in ids]).to_numpy(),
            "duration_s": pd.to_numeric(picked[("track", "duration")], errors="coerce").astype(float).to_numpy(),
            "listens": pd.to_numeric(picked[("track", "listens")], errors="coerce").astype("Int64").to_numpy(),
            "subset": picked[("set", "subset")].astype("string").to_numpy(),
            "track_number": number(("track", "number")),
            "year": year(("album", "date_released")),
        }
    )


def load_features_csv(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    """FMA's features.csv as a flat frame: index track_id, ``columns`` (the feature schema's names, in its order;
    ``feature_statistic_number`` as FMA's three header rows give them)."""
    try:
        frame = pd.read_csv(path, index_col=0, header=[0, 1, 2], low_memory=False)
    except (OSError, ValueError) as exc:
        raise FmaFormatError(f"{path}: cannot read as FMA features.csv ({exc})") from None
    frame.columns = [f"{f}_{s}_{n}" for f, s, n in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FmaFormatError(
            f"{path}: not an FMA features.csv; {len(missing)} feature columns missing, e.g. {missing[0]}"
        )
    frame.index = frame.index.astype("int64")
    frame.index.name = "track_id"
    return frame[list(columns)].astype("float64")
