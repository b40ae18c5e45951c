"""sample-library: write a small music library in the exact FMA layout, rendered by Spark.

``<out>/fma_metadata/tracks.csv`` (two column levels plus an index-name line,
52 columns, genres as Python-literal lists, ``set.subset``),
``<out>/fma_metadata/genres.csv`` and audio at
``<out>/audio/<first 3 digits>/<6-digit id>.<ext>`` (mostly MP3, some OGG,
FLAC and WAV). The audio is synthetic but musical (``udfs.synth``): genres
differ in timbre, tempo, rhythm and harmony, and artists share a sound.

Unless ``--no-broken``, it also plants the files a real library has: an empty
file, a truncated MP3, random bytes and a text file with an audio extension, a
clip shorter than a second, a catalogue row whose file is missing; and odd but
valid audio (pure silence, 8 kHz mono, 6 channels at 48 kHz, 11.025 kHz OGG), and
two files that are hard on a decoder: three hours of silence in an MP3 with no
seek table (as a concatenated or stream-ripped file has), and an MP3 behind a
16 MB ID3 tag (embedded cover art of that size is common).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from conf.settings import Settings, path_argument
from spark_jobs.errors import JobInputError
from spark_jobs.fma import audio_relpath, parse_list, write_genres_csv, write_tracks_csv
from spark_jobs.session import build_spark
from udfs.synth import GENRES, ArtistSound, make_artist, render_track

log = logging.getLogger("earshot.sample_library")

FORMATS = {
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
    "flac": ("FLAC", "PCM_16"),
    "wav": ("WAV", "PCM_16"),
}
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
LONG_SILENCE_MINUTES = 180
HUGE_HEADER_BYTES = 16 * 1024 * 1024
ADJECTIVES = ("Velvet", "Broken", "Silver", "Hollow", "Electric", "Quiet", "Crimson", "Northern", "Paper", "Golden")
NOUNS = ("Harbor", "Engines", "Orchard", "Satellites", "Foxes", "Lanterns", "Tides", "Canyons", "Choir", "Static")


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracks", type=int, default=200, help="rows in tracks.csv, planted files included")
    parser.add_argument("--out", default=None, type=path_argument, help="library folder (default: paths.library_root)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-broken", action="store_true", help="plant no broken or odd files")
    parser.add_argument("--force", action="store_true", help="write again over an existing library")


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
        specs.append(
            TrackSpec(
                int(ids[i]),
                "music",
                ext,
                rate,
                int(rng.choice([1, 2])),
                seconds,
                artist_index,
                genre_index,
                seed * 100_003 + i,
            )
        )
    odd = {
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
    for j, kind in enumerate(planted):
        ext, rate, channels, seconds = odd[kind]
        genre_index = j % len(GENRES)
        specs.append(
            TrackSpec(
                int(ids[n_music + j]),
                kind,
                ext,
                rate,
                channels,
                seconds,
                genre_index * per_genre,
                genre_index,
                seed + j,
            )
        )
    return specs, artists


def render_spec(spec: TrackSpec, artists: list[ArtistSound]) -> np.ndarray:
    """The samples of one spec, shape (frames, channels)."""
    if spec.kind == "silence":
        mono = np.zeros(int(spec.seconds * spec.sample_rate), dtype=np.float32)
    else:
        mono = render_track(artists[spec.artist_index], seconds=spec.seconds, sr=spec.sample_rate, seed=spec.seed)
    if spec.channels == 1:
        return mono[:, None]
    # Slightly different channels, as a real stereo (or surround) mix has.
    gains = np.linspace(1.0, 0.8, spec.channels, dtype=np.float32)
    return mono[:, None] * gains[None, :]


WRITE_BLOCK_FRAMES = 32768


def write_audio(path: Path | io.BytesIO, samples: np.ndarray, sample_rate: int, ext: str) -> None:
    """Encode ``samples`` (frames, channels) to ``path`` in blocks.

    libsndfile 1.2's Vorbis encoder segfaults on one large write (45 s of 48 kHz
    stereo did it); block-sized writes avoid it for every format.
    """
    import soundfile as sf

    fmt, subtype = FORMATS[ext]
    with sf.SoundFile(path, "w", sample_rate, samples.shape[1], format=fmt, subtype=subtype) as f:
        for start in range(0, len(samples), WRITE_BLOCK_FRAMES):
            f.write(samples[start : start + WRITE_BLOCK_FRAMES])


def write_spec(spec: TrackSpec, artists: list[ArtistSound], audio_root: str) -> tuple[int, str, float]:
    """Render and write one track; returns (track_id, relative path or "", duration in s)."""
    rel = audio_relpath(spec.track_id, spec.ext)
    path = Path(audio_root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.kind == "missing_file":
        return spec.track_id, "", spec.seconds
    if spec.kind == "empty":
        path.write_bytes(b"")
        return spec.track_id, rel, spec.seconds
    if spec.kind == "random_bytes":
        path.write_bytes(np.random.default_rng(spec.seed).bytes(64_000))
        return spec.track_id, rel, spec.seconds
    if spec.kind == "text_file":
        path.write_text("This is a text file, not audio.\n" * 200)
        return spec.track_id, rel, spec.seconds
    tmp = path.with_suffix(".tmp" + path.suffix)
    if spec.kind == "long_silence":
        tmp.write_bytes(long_silent_mp3(spec.sample_rate, LONG_SILENCE_MINUTES))
        os.replace(tmp, path)
        return spec.track_id, rel, spec.seconds
    samples = render_spec(spec, artists)
    write_audio(tmp, samples, spec.sample_rate, spec.ext)
    if spec.kind == "truncated":
        data = tmp.read_bytes()
        tmp.write_bytes(data[:1500])
    if spec.kind == "huge_header":
        tmp.write_bytes(id3_tag(HUGE_HEADER_BYTES) + tmp.read_bytes())
    os.replace(tmp, path)
    return spec.track_id, rel, len(samples) / spec.sample_rate


def long_silent_mp3(sample_rate: int, minutes: int) -> bytes:
    """``minutes`` of silence as MP3 frames with no Xing/Info seek table: one encoded minute, repeated.

    Without the table a decoder must scan the whole stream to learn its length or seek.
    """
    buf = io.BytesIO()
    write_audio(buf, np.zeros((sample_rate * 60, 1), dtype=np.float32), sample_rate, "mp3")
    data = buf.getvalue()
    second = next(i for i in range(1, len(data) - 1) if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0)
    return data[second:] * minutes  # the first frame holds the Xing/Info table


def id3_tag(size: int) -> bytes:
    """An ID3v2.4 tag of ``size`` bytes of padding (sizes are 7-bit "synchsafe" integers)."""
    synchsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + synchsafe + b"\x00" * size


def main(settings: Settings, args: argparse.Namespace) -> int:
    out = Path(args.out or settings.paths.library_root).resolve()
    tracks_csv = out / "fma_metadata" / "tracks.csv"
    if tracks_csv.exists() and not args.force:
        log.info("library exists at %s; reusing it (--force writes it again)", out)
        print(f"sample-library: reusing {out}")  # noqa: T201
        return 0
    specs, artists = plan(args.tracks, seed=args.seed, broken=not args.no_broken)
    audio_root = str(out / "audio")
    spark = build_spark(settings, app_name="sample-library")
    slices = max(1, min(len(specs), spark.sparkContext.defaultParallelism * 4))
    log.info("rendering %d tracks into %s on %d partitions", len(specs), audio_root, slices)
    written = spark.sparkContext.parallelize(specs, slices).map(lambda s: write_spec(s, artists, audio_root)).collect()
    durations = {track_id: seconds for track_id, _, seconds in written}
    tracks = tracks_frame(specs, artists, durations, seed=args.seed)
    write_tracks_csv(tracks, tracks_csv)
    write_genres_csv(genres_frame(tracks), out / "fma_metadata" / "genres.csv")
    n_planted = sum(s.kind != "music" for s in specs)
    print(f"sample-library: {len(specs)} tracks ({n_planted} planted) in {out}")  # noqa: T201
    return 0


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
        all_ids = sorted({genre.genre_id, *genre_ids})
        artist_id = spec.artist_index + 1
        album_id = artist_id * 10 + int(rng.integers(0, 2))
        subset = str(rng.choice(["small", "small", "medium", "medium", "large"]))
        title = f"{genre.title} study {spec.track_id}" if spec.kind == "music" else f"Planted {spec.kind}"
        rows.append(
            {
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
                ("artist", "active_year_begin"): "",
                ("artist", "active_year_end"): "",
                ("artist", "associated_labels"): "",
                (
                    "artist",
                    "bio",
                ): f'<p>{artist_name(spec.artist_index)} play "{genre.title}", loudly,\nsince 2003.</p>',
                ("artist", "comments"): 0,
                ("artist", "date_created"): "2008-11-26 01:42:32",
                ("artist", "favorites"): int(rng.integers(0, 20)),
                ("artist", "id"): artist_id,
                ("artist", "latitude"): "",
                ("artist", "location"): "Somewhere, Earth",
                ("artist", "longitude"): "",
                ("artist", "members"): "",
                ("artist", "name"): artist_name(spec.artist_index),
                ("artist", "related_projects"): "",
                ("artist", "tags"): f"['{genre.title.lower()}']",
                ("artist", "website"): "",
                ("artist", "wikipedia_page"): "",
                ("set", "split"): str(rng.choice(["training"] * 8 + ["validation", "test"])),
                ("set", "subset"): subset,
                ("track", "bit_rate"): 256000 if spec.ext == "mp3" else 0,
                ("track", "comments"): 0,
                ("track", "composer"): "",
                ("track", "date_created"): "2008-11-26 01:48:12",
                ("track", "date_recorded"): "",
                ("track", "duration"): int(round(durations.get(spec.track_id, spec.seconds))),
                ("track", "favorites"): int(rng.integers(0, 10)),
                ("track", "genre_top"): genre.title,
                ("track", "genres"): str(genre_ids),
                ("track", "genres_all"): str(all_ids),
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
        )
    frame = pd.DataFrame(rows, index=pd.Index([s.track_id for s in specs], name="track_id"))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame.drop(columns=[("_ext", "ext")])


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
