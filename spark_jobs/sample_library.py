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
from pathlib import Path

import numpy as np

from conf.settings import Settings, path_argument
from connectors.fma import audio_relpath, write_genres_csv, write_tracks_csv
from spark_jobs.progress import spark_tasks
from spark_jobs.sample_plan import (
    FORMATS,
    HUGE_HEADER_BYTES,
    LONG_SILENCE_MINUTES,
    TrackSpec,
    genres_frame,
    plan,
    tracks_frame,
)
from spark_jobs.session import build_spark
from udfs.synth import ArtistSound, render_track

log = logging.getLogger("earshot.sample_library")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracks", type=int, default=200, help="rows in tracks.csv, planted files included")
    parser.add_argument("--out", default=None, type=path_argument, help="library folder (default: paths.library_root)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-broken", action="store_true", help="plant no broken or odd files")
    parser.add_argument("--force", action="store_true", help="write again over an existing library")


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
    with spark_tasks(spark, "sample-library", log=log):
        written = (
            spark.sparkContext.parallelize(specs, slices).map(lambda s: write_spec(s, artists, audio_root)).collect()
        )
    durations = {track_id: seconds for track_id, _, seconds in written}
    tracks = tracks_frame(specs, artists, durations, seed=args.seed)
    write_tracks_csv(tracks, tracks_csv)
    write_genres_csv(genres_frame(tracks), out / "fma_metadata" / "genres.csv")
    n_planted = sum(s.kind != "music" for s in specs)
    print(f"sample-library: {len(specs)} tracks ({n_planted} planted) in {out}")  # noqa: T201
    return 0
