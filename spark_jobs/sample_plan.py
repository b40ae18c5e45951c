"""What sample-library writes, decided up front: each track's spec, its artist, and the FMA metadata frames.

Pure (no Spark, no files): ``spark_jobs.sample_library`` renders the specs' audio and writes the CSVs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from conf.errors import JobInputError
from connectors.fma import parse_list
from udfs.synth import GENRES, ArtistSound, make_artist

FORMATS = {
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
    "flac": ("FLAC", "PCM_16"),
    "wav": ("WAV", "PCM_16"),
}
LONG_SILENCE_MINUTES = 180
HUGE_HEADER_BYTES = 16 * 1024 * 1024
ADJECTIVES = ("Velvet", "Broken", "Silver", "Hollow", "Electric", "Quiet", "Crimson", "Northern", "Paper", "Golden")
NOUNS = ("Harbor", "Engines", "Orchard", "Satellites", "Foxes", "Lanterns", "Tides", "Canyons", "Choir", "Static")
# kind -> expected outcome, for the planted files (tests and the README rely on these names).
PLANTED: dict[str, str] = {
    "empty": "error",
    "truncated": "error",
    "random_bytes": "error",
    "text_file": "error",
    "too_short": "error",
    "missing_file": "error",
    "silence": "ok",
    "mono_8k": "ok",
    "six_channels": "ok",
    "ogg_11k": "ok",
    "long_silence": "ok",
    "huge_header": "ok",
}


@dataclass(frozen=True)
class TrackSpec:
    """Everything an executor needs to render and write one track."""

    track_id: int
    kind: str  # "music" or a PLANTED kind
    ext: str
    sample_rate: int
    channels: int
    seconds: float
    artist_index: int
    genre_index: int
    seed: int


# Each planted file's format, rate, channels and seconds.
PLANTED_AUDIO = {
    "empty": ("mp3", 22050, 1, 30.0),
    "truncated": ("mp3", 22050, 2, 30.0),
    "random_bytes": ("mp3", 22050, 1, 30.0),
    "text_file": ("mp3", 22050, 1, 30.0),
    "too_short": ("mp3", 22050, 1, 0.4),
    "missing_file": ("mp3", 22050, 1, 30.0),
    "silence": ("mp3", 22050, 1, 30.0),
    "mono_8k": ("wav", 8000, 1, 30.0),
    "six_channels": ("flac", 48000, 6, 30.0),
    "ogg_11k": ("ogg", 11025, 1, 30.0),
    "long_silence": ("mp3", 8000, 1, LONG_SILENCE_MINUTES * 60.0),
    "huge_header": ("mp3", 22050, 2, 30.0),
}


def plan(n_tracks: int, *, seed: int, broken: bool) -> tuple[list[TrackSpec], list[ArtistSound]]:
    """Decide every track (pure, deterministic): ids, genres, artists, formats, planted files."""
    planted = list(PLANTED) if broken else []
    n_music = n_tracks - len(planted)
    if n_music < len(GENRES):
        raise JobInputError(
            f"--tracks must be at least {len(planted) + len(GENRES)} (one per genre plus planted files)"
        )
    rng = np.random.default_rng(seed)
    per_genre = max(2, n_music // len(GENRES) // 6)
    artists = [make_artist(g, rng) for g in GENRES for _ in range(per_genre)]
    ids = np.cumsum(rng.integers(1, 6, size=n_tracks)) + 1
    specs = []
    for i in range(n_music):
        genre_index = i % len(GENRES)
        artist_index = genre_index * per_genre + int(rng.integers(per_genre))
        ext = str(rng.choice(["mp3"] * 17 + ["ogg", "flac", "wav"]))
        rate = int(rng.choice([22050, 22050, 22050, 44100, 44100, 48000]))
        seconds = 45.0 if rng.random() < 0.15 else 30.0
        channels = int(rng.choice([1, 2]))
        specs.append(
            TrackSpec(int(ids[i]), "music", ext, rate, channels, seconds, artist_index, genre_index, seed * 100_003 + i)
        )
    for j, kind in enumerate(planted):
        ext, rate, channels, seconds = PLANTED_AUDIO[kind]
        genre_index = j % len(GENRES)
        specs.append(
            TrackSpec(int(ids[n_music + j]), kind, ext, rate, channels, seconds, genre_index * per_genre, genre_index,
                      seed + j)  # fmt: skip
        )
    return specs, artists


def artist_name(index: int) -> str:
    return f"The {ADJECTIVES[index % len(ADJECTIVES)]} {NOUNS[(index * 7 + index // len(NOUNS)) % len(NOUNS)]}"


def tracks_frame(
    specs: list[TrackSpec], artists: list[ArtistSound], durations: dict[int, float], *, seed: int
) -> pd.DataFrame:
    """The FMA tracks table (two column levels) for the planned tracks."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for spec in specs:
        genre = GENRES[spec.genre_index]
        use_sub = rng.random() < 0.4
        genre_ids = [genre.sub_genre[0]] if use_sub else [genre.genre_id]
        artist_id = spec.artist_index + 1
        album_id = artist_id * 10 + int(rng.integers(0, 2))
        subset = str(rng.choice(["small", "small", "medium", "medium", "large"]))
        # In FMA's column order; the random draws in this order too (the table is the same for a seed).
        row = {**_album_fields(rng, album_id), **_artist_fields(rng, spec, genre, artist_id)}
        row[("set", "split")] = str(rng.choice(["training"] * 8 + ["validation", "test"]))
        row[("set", "subset")] = subset
        row.update(_track_fields(rng, spec, genre, genre_ids, durations))
        rows.append(row)
    frame = pd.DataFrame(rows, index=pd.Index([s.track_id for s in specs], name="track_id"))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame.drop(columns=[("_ext", "ext")])


def _album_fields(rng, album_id: int) -> dict:
    return {
        ("album", "comments"): 0,
        ("album", "date_created"): "2009-01-05 11:24:09",
        ("album", "date_released"): "2009-01-05 00:00:00",
        ("album", "engineer"): "",
        ("album", "favorites"): int(rng.integers(0, 5)),
        ("album", "id"): album_id,
        ("album", "information"): '<p>Recorded live, in one take; "raw",\nand proud.</p>',
        ("album", "listens"): int(rng.integers(100, 5000)),
        ("album", "producer"): "",
        ("album", "tags"): "[]",
        ("album", "title"): f"Album {album_id}",
        ("album", "tracks"): 8,
        ("album", "type"): "Album",
    }


def _artist_fields(rng, spec: TrackSpec, genre, artist_id: int) -> dict:
    name = artist_name(spec.artist_index)
    return {
        ("artist", "active_year_begin"): "",
        ("artist", "active_year_end"): "",
        ("artist", "associated_labels"): "",
        ("artist", "bio"): f'<p>{name} play "{genre.title}", loudly,\nsince 2003.</p>',
        ("artist", "comments"): 0,
        ("artist", "date_created"): "2008-11-26 01:42:32",
        ("artist", "favorites"): int(rng.integers(0, 20)),
        ("artist", "id"): artist_id,
        ("artist", "latitude"): "",
        ("artist", "location"): "Somewhere, Earth",
        ("artist", "longitude"): "",
        ("artist", "members"): "",
        ("artist", "name"): name,
        ("artist", "related_projects"): "",
        ("artist", "tags"): f"['{genre.title.lower()}']",
        ("artist", "website"): "",
        ("artist", "wikipedia_page"): "",
    }


def _track_fields(rng, spec: TrackSpec, genre, genre_ids: list[int], durations: dict[int, float]) -> dict:
    title = f"{genre.title} study {spec.track_id}" if spec.kind == "music" else f"Planted {spec.kind}"
    return {
        ("track", "bit_rate"): 256000 if spec.ext == "mp3" else 0,
        ("track", "comments"): 0,
        ("track", "composer"): "",
        ("track", "date_created"): "2008-11-26 01:48:12",
        ("track", "date_recorded"): "",
        ("track", "duration"): int(round(durations.get(spec.track_id, spec.seconds))),
        ("track", "favorites"): int(rng.integers(0, 10)),
        ("track", "genre_top"): genre.title,
        ("track", "genres"): str(genre_ids),
        ("track", "genres_all"): str(sorted({genre.genre_id, *genre_ids})),
        ("track", "information"): "",
        ("track", "interest"): int(rng.integers(100, 9000)),
        ("track", "language_code"): "en",
        ("track", "license"): "Attribution-NonCommercial-ShareAlike 3.0 International",
        ("track", "listens"): int(rng.integers(50, 9000)),
        ("track", "lyricist"): "",
        ("track", "number"): int(rng.integers(1, 9)),
        ("track", "publisher"): "",
        ("track", "tags"): "[]",
        ("track", "title"): title,
        ("_ext", "ext"): spec.ext,
    }


def genres_frame(tracks: pd.DataFrame) -> pd.DataFrame:
    """genres.csv: genre_id, #tracks, parent (0 for a root), title, top_level."""
    rows = []
    for genre in GENRES:
        rows.append((genre.genre_id, 0, 0, genre.title, genre.genre_id))
        rows.append((genre.sub_genre[0], 0, genre.genre_id, genre.sub_genre[1], genre.genre_id))
    frame = pd.DataFrame(rows, columns=["genre_id", "#tracks", "parent", "title", "top_level"])
    counts: dict[int, int] = {}
    for cell in tracks[("track", "genres_all")]:
        for gid in parse_list(cell):
            counts[gid] = counts.get(gid, 0) + 1
    frame["#tracks"] = frame["genre_id"].map(lambda g: counts.get(g, 0))
    return frame
