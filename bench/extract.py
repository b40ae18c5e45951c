# ruff: noqa: T201 - a command-line tool: it prints its table
"""Extraction benchmark: our one-STFT-one-CQT recipe against a naive per-feature librosa recipe.

    python -m bench.extract            # 12 clips (about two minutes)
    python -m bench.extract --full     # 48 clips
    python -m bench.extract --real DIR # and every recording under DIR (services/real-music.sh makes one)
    python -m bench.extract --clips 4 --job DIR  # and the extract job end to end over DIR, with and without musicnn

Clips are 30 s stereo MP3s at 44.1 kHz, like FMA's, rendered by the sample
library's synthesizer. Reports per-clip decode, resample and feature time,
clips per second per core and times realtime, the naive recipe (a file load and
its own spectrogram for every feature) on the same clips, and throughput of a
plain 2-process pool against Spark on 1 and 2 cores. ``--real DIR`` adds
full-length recordings (any suffix ingest takes, under DIR): their decode of
30 s from the middle (a seek) against decoding the whole file and slicing it,
and tracks per second through the Spark UDF on 2 cores beside the synthetic
clips. ``--job DIR`` (needs the local stack) adds the ``extract`` job end to end through the launcher
(``./spark-submit.sh pipeline "ingest --folder DIR" extract`` on local[2], a fresh lake and database)
with ``extract.embedding`` none and musicnn-msd, beside the UDF's own rate on the same recordings;
and musicnn's forward pass per 30 s clip on one core, ours (the timbral layers in Winograd's form) against
the direct form, their largest difference, and the direct form's floor here (its multiply-adds at the rate
this core's BLAS reaches on the largest layer's matrix product). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from conf.settings import load_settings

CLIP_S = 30.0


def make_clips(folder: Path, n: int) -> list[Path]:
    import soundfile as sf

    from udfs.synth import GENRES, make_artist, render_track

    rng = np.random.default_rng(11)
    paths = []
    for i in range(n):
        artist = make_artist(GENRES[i % len(GENRES)], rng)
        y = render_track(artist, seconds=CLIP_S, sr=44100, seed=i)
        path = folder / f"{i:06d}.mp3"
        sf.write(path, np.stack([y, 0.9 * y], axis=1), 44100, format="MP3", subtype="MPEG_LAYER_III")
        paths.append(path)
    return paths


def time_ours(paths: list[Path], sr: int) -> dict[str, float]:
    """Per-clip medians of decode (to the file's own rate), resample, and features."""
    import soxr

    from udfs.audio import decode_clip
    from udfs.features import compute_features

    decode, resample, features = [], [], []
    for p in paths:
        data = p.read_bytes()
        t0 = time.perf_counter()
        clip = decode_clip(data, sample_rate=44100, clip_seconds=CLIP_S)
        t1 = time.perf_counter()
        y = soxr.resample(clip.samples, 44100, sr, quality="HQ").astype(np.float32)
        t2 = time.perf_counter()
        compute_features(y=y, sr=sr)
        t3 = time.perf_counter()
        decode.append(t1 - t0), resample.append(t2 - t1), features.append(t3 - t2)
    return {
        "decode_s": statistics.median(decode),
        "resample_s": statistics.median(resample),
        "features_s": statistics.median(features),
        "total_s": statistics.median([a + b + c for a, b, c in zip(decode, resample, features, strict=True)]),
    }


def real_recordings(folder: Path) -> list[Path]:
    from connectors.fma import AUDIO_EXTENSIONS

    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS)


def time_decode_whole(paths: list[Path]) -> float:
    """Baseline for long files: decode the whole recording, then keep 30 s from the middle (median s per file)."""
    import soundfile as sf

    times = []
    for p in paths:
        data = p.read_bytes()
        t0 = time.perf_counter()
        y, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        want = int(CLIP_S * rate)
        start = max(0, (len(y) - want) // 2)
        _ = y[start : start + want].mean(axis=1)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sf_minutes(paths: list[Path]) -> list[float]:
    import soundfile as sf

    return [sf.info(str(p)).duration / 60 for p in paths]


def naive_one(path: str, sr: int) -> None:
    """The textbook recipe: load the file again for every feature, each computing its own transform."""
    import librosa

    calls = [
        lambda y: librosa.feature.chroma_stft(y=y, sr=sr),
        lambda y: librosa.feature.chroma_cqt(y=y, sr=sr),
        lambda y: librosa.feature.chroma_cens(y=y, sr=sr),
        lambda y: librosa.feature.tonnetz(y=y, sr=sr),
        lambda y: librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20),
        lambda y: librosa.feature.rms(y=y),
        lambda y: librosa.feature.zero_crossing_rate(y),
        lambda y: librosa.feature.spectral_centroid(y=y, sr=sr),
        lambda y: librosa.feature.spectral_bandwidth(y=y, sr=sr),
        lambda y: librosa.feature.spectral_contrast(y=y, sr=sr),
        lambda y: librosa.feature.spectral_rolloff(y=y, sr=sr),
        lambda y: librosa.feature.tempo(y=y, sr=sr),
    ]
    for call in calls:
        y, _ = librosa.load(path, sr=sr, mono=True, offset=0.0, duration=CLIP_S)
        values = call(y)
        np.median(values, axis=-1)


def time_naive(paths: list[Path], sr: int) -> float:
    times = []
    for p in paths:
        t0 = time.perf_counter()
        naive_one(str(p), sr)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _pool_work(args: tuple[str, int, str]) -> bool:
    from udfs.analyse import analyse
    from udfs.numba_cache import warm_up

    path, sr, cache_dir = args
    warm_up(cache_dir)
    return analyse(Path(path).read_bytes(), sample_rate=sr, clip_seconds=CLIP_S).error is None


def time_pool(paths: list[Path], sr: int, workers: int, cache_dir: str) -> float:
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.map(_pool_work, [(str(paths[0]), sr, cache_dir)] * workers)  # warm: imports and numba cache
        t0 = time.perf_counter()
        ok = pool.map(_pool_work, [(str(p), sr, cache_dir) for p in paths], chunksize=1)
        wall = time.perf_counter() - t0
    assert all(ok)
    return wall


def time_spark(paths: list[Path], sr: int, cores: int) -> float:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from spark_jobs.session import build_spark
    from udfs.pandas_udfs import make_analyse_udf

    settings = load_settings()
    spark = build_spark(settings, app_name=f"bench-extract-{cores}", master=f"local[{cores}]")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "4")
    udf = make_analyse_udf(sample_rate=sr, clip_seconds=CLIP_S, numba_cache_dir=settings.paths.numba_cache_dir)

    def run(ps: list[Path]) -> float:
        df = spark.read.format("binaryFile").load([str(p) for p in ps]).repartition(max(1, min(len(ps), cores * 4)))
        t0 = time.perf_counter()
        errors = df.select(udf("content").alias("a")).filter(F.col("a.error").isNotNull()).count()
        assert errors == 0
        return time.perf_counter() - t0

    run(paths[: cores * 2])  # warm the Python workers
    wall = run(paths)
    spark.stop()
    SparkSession.builder.getOrCreate  # noqa: B018 - nothing; the next call makes a fresh context
    return wall


def musicnn_patch_flops(weights) -> float:
    """Floating-point operations of musicnn's front and mid end on one 3 s patch (2 per multiply-add)."""
    from udfs import musicnn

    layers = [(c, musicnn.N_MELS) for c in (*weights.timbral, *weights.temporal)]
    layers += [(weights.mid[0], 561), (weights.mid[1], 64), (weights.mid[2], 64)]
    return float(sum(2 * musicnn.PATCH * (width - c.size[1] + 1) * c.kernel.size for c, width in layers))


def time_musicnn(path: Path) -> dict[str, float]:
    """The forward pass on the middle 30 s of ``path``, one core: seconds per clip with the timbral layers in
    Winograd's form (ours) and in the direct form, the largest difference between their embeddings, and the
    direct form's floor here."""
    import dataclasses

    from threadpoolctl import threadpool_limits

    from udfs import musicnn
    from udfs.audio import decode_clip

    weights = musicnn.load_weights(Path(load_settings().paths.models_dir) / musicnn.WHEEL)
    direct = dataclasses.replace(weights, timbral=tuple(dataclasses.replace(c, tiled=None) for c in weights.timbral))
    samples = decode_clip(path.read_bytes(), sample_rate=musicnn.SR, clip_seconds=CLIP_S).samples
    patches = max(1, len(musicnn.log_mel(samples)) // musicnn.PATCH)

    def seconds(w) -> float:
        musicnn.embed(w, samples)  # warm
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            musicnn.embed(w, samples)
            runs.append(time.perf_counter() - t0)
        return statistics.median(runs)

    with threadpool_limits(1):
        ours, direct_s = seconds(weights), seconds(direct)
        got, want = musicnn.embed(weights, samples), musicnn.embed(direct, samples)
        big = weights.timbral[0]  # the largest product: every (7, 38) window of a patch times 204 filters
        a = np.random.default_rng(0).random((musicnn.PATCH * (musicnn.N_MELS - big.size[1] + 1), big.kernel.shape[0]))
        a = a.astype(np.float32)
        a @ big.kernel
        t0 = time.perf_counter()
        for _ in range(10):
            a @ big.kernel
        gflops = 10 * 2 * a.shape[0] * big.kernel.size / (time.perf_counter() - t0) / 1e9
    flops = musicnn_patch_flops(weights) * patches
    return {"clip_s": ours, "direct_clip_s": direct_s, "gflop": flops / 1e9, "gemm_gflops": gflops,
            "floor_s": flops / 1e9 / gflops, "patches": patches,
            "max_abs_difference": float(np.abs(got - want).max()),
            "largest_value": float(np.abs(want).max())}  # fmt: skip


def time_job(folder: Path, embedding: str) -> dict[str, float]:
    """``pipeline "ingest --folder DIR" extract`` through the launcher on a fresh lake and database."""
    import re
    import shutil
    import subprocess

    from conf.settings import REPO_ROOT
    from connectors import mongo_io

    work = Path(tempfile.mkdtemp(prefix="earshot-bench-extract-"))
    database = f"earshot_bench_extract_{os.getpid()}_{embedding.replace('-', '_')}"
    env = {**os.environ, "MONGO_DATABASE": database, "EARSHOT_LAKE_ROOT": str(work / "lake"),
           "EARSHOT_INDEX_ROOT": str(work / "index"), "EARSHOT_CHECKPOINT_ROOT": str(work / "checkpoints"),
           "EARSHOT_LIBRARY_ROOT": str(folder), "EARSHOT__EXTRACT__EMBEDDING": embedding}  # fmt: skip
    command = [str(REPO_ROOT / "spark-submit.sh"), "--master", "local[2]", "pipeline", f"ingest --folder {folder}",
               "extract"]  # fmt: skip
    try:
        t0 = time.perf_counter()
        run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if run.returncode != 0:
            raise SystemExit(f"bench.extract: the extract job failed ({run.returncode}):\n{run.stderr[-2000:]}")
        said = re.search(r"extract: (\d+) tracks analysed \((\d+) with features.*in ([\d.]+) s", run.stdout)
        if said is None:
            raise SystemExit(f"bench.extract: no extract summary in its output:\n{run.stdout[-2000:]}")
    finally:
        with mongo_io.connect(load_settings(env)) as client:
            client.drop_database(database)
        shutil.rmtree(work, ignore_errors=True)
    tracks, extract_s = int(said.group(1)), float(said.group(3))
    return {"tracks": tracks, "with_features": int(said.group(2)), "extract_s": extract_s,
            "tracks_per_s": tracks / extract_s, "pipeline_wall_s": wall}  # fmt: skip


def job_rows(folder: Path) -> tuple[dict, list[tuple[str, str, str]]]:
    """The end-to-end rows of ``--job DIR``: the job with and without the embedding, the UDF alone, musicnn."""
    from connectors import mongo_io

    settings = load_settings()
    try:
        with mongo_io.connect(settings) as client:
            client.admin.command("ping")
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing
        start = ".venv/bin/python -m services.stack up"
        raise SystemExit(f"bench.extract --job needs the local stack ({start}): {exc}") from None
    recordings = real_recordings(folder)
    if not recordings:
        raise SystemExit(f"bench.extract: no audio files under {folder}")
    plain = time_job(folder, "none")
    embedded = time_job(folder, "musicnn-msd")
    udf2 = len(recordings) / time_spark(recordings, settings.extract.sample_rate, 2)
    forward = time_musicnn(recordings[0])
    result = {"folder": str(folder.resolve()), "recordings": len(recordings), "job_no_embedding": plain,
              "job_musicnn": embedded, "udf_spark2_tracks_per_s": round(udf2, 2), "musicnn_forward": forward,
              "target_job_musicnn_tracks_per_s": 3.0}  # fmt: skip
    rows = [
        (f"job: {len(recordings)} recordings, extract end to end", "", ""),
        ("tracks/s: job with musicnn vs without", f"{embedded['tracks_per_s']:.2f}", f"{plain['tracks_per_s']:.2f}"),
        ("tracks/s: job without musicnn vs the UDF alone", f"{plain['tracks_per_s']:.2f}", f"{udf2:.2f}"),
        ("musicnn per 30 s clip, 1 core: ours vs direct", f"{forward['clip_s']:.3f} s",
         f"{forward['direct_clip_s']:.3f} s"),
        ("musicnn: direct form's floor (its GFLOP a clip)", f"{forward['floor_s']:.3f} s", f"{forward['gflop']:.1f}"),
        ("musicnn: ours vs direct, largest |difference|", f"{forward['max_abs_difference']:.1e}",
         f"of {forward['largest_value']:.1f}"),
    ]
    return result, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.extract", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="48 clips instead of 12")
    parser.add_argument("--clips", type=int, help="number of clips (overrides --full)")
    parser.add_argument("--real", metavar="DIR", help="also time the full-length recordings under DIR")
    parser.add_argument("--job", metavar="DIR", help="also the extract job end to end over DIR (the local stack)")
    args = parser.parse_args(argv)
    real = real_recordings(Path(args.real)) if args.real else []
    if args.real and not real:
        raise SystemExit(f"bench.extract: no audio files under {args.real}")
    settings = load_settings()
    os.environ.setdefault("NUMBA_CACHE_DIR", settings.paths.numba_cache_dir)
    sr = settings.extract.sample_rate
    n = args.clips or (48 if args.full else 12)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_clips(Path(tmp), n)
        from udfs.analyse import analyse

        analyse(paths[0].read_bytes(), sample_rate=sr, clip_seconds=CLIP_S)  # warm-up: numba, imports
        ours = time_ours(paths, sr)
        naive = time_naive(paths[: max(3, n // 4)], sr)
        pool2 = time_pool(paths, sr, 2, settings.paths.numba_cache_dir)
        spark1 = time_spark(paths, sr, 1)
        spark2 = time_spark(paths, sr, 2)
        if real:
            real_ours = time_ours(real[: min(len(real), 24)], sr)
            real_whole = time_decode_whole(real[: min(len(real), 24)])
            real_spark2 = time_spark(real, sr, 2)
    result = {
        "bench": "extract",
        "clips": n,
        "clip_seconds": CLIP_S,
        "sample_rate": sr,
        "ours_decode_s": round(ours["decode_s"], 4),
        "ours_resample_s": round(ours["resample_s"], 4),
        "ours_features_s": round(ours["features_s"], 4),
        "ours_total_s": round(ours["total_s"], 4),
        "ours_x_realtime_per_core": round(CLIP_S / ours["total_s"], 1),
        "naive_total_s": round(naive, 4),
        "speedup_vs_naive": round(naive / ours["total_s"], 2),
        "pool2_clips_per_s": round(n / pool2, 2),
        "spark1_clips_per_s": round(n / spark1, 2),
        "spark2_clips_per_s": round(n / spark2, 2),
        "spark2_vs_pool2": round(pool2 / spark2, 2),
        "spark2_vs_spark1": round(spark1 / spark2, 2),
        "targets": {"ours_total_s": 0.20, "speedup_vs_naive": 2.0, "spark2_vs_pool2": 0.9},
    }
    if real:
        result["real"] = {
            "folder": str(Path(args.real).resolve()),
            "recordings": len(real),
            "median_minutes": round(statistics.median(sf_minutes(real)), 1),
            "decode_middle_s": round(real_ours["decode_s"], 4),
            "decode_whole_s": round(real_whole, 4),
            "total_s": round(real_ours["total_s"], 4),
            "spark2_tracks_per_s": round(len(real) / real_spark2, 2),
            "target_spark2_tracks_per_s": 6.0,
        }
    rows = [
        ("per clip: decode (MP3 44.1 kHz stereo)", f"{ours['decode_s'] * 1000:.1f} ms", ""),
        ("per clip: resample to 22.05 kHz", f"{ours['resample_s'] * 1000:.1f} ms", ""),
        ("per clip: features (518 + tempo)", f"{ours['features_s'] * 1000:.1f} ms", ""),
        ("per clip: total, ours vs naive", f"{ours['total_s']:.3f} s", f"{naive:.3f} s"),
        ("times realtime per core", f"{CLIP_S / ours['total_s']:.0f}x", f"{CLIP_S / naive:.0f}x"),
        ("clips/s: Spark local[2] vs 2-process pool", f"{n / spark2:.2f}", f"{n / pool2:.2f}"),
        ("clips/s: Spark local[1]", f"{n / spark1:.2f}", ""),
    ]
    if real:
        r = result["real"]
        rows += [
            (f"real: {len(real)} recordings, median {r['median_minutes']} min", "", ""),
            (
                "real: decode 30 s from the middle vs whole file",
                f"{real_ours['decode_s']:.3f} s",
                f"{real_whole:.3f} s",
            ),
            ("real: per track total (ours)", f"{real_ours['total_s']:.3f} s", ""),
            (
                "tracks/s, Spark local[2]: real vs synthetic clips",
                f"{r['spark2_tracks_per_s']:.2f}",
                f"{n / spark2:.2f}",
            ),
        ]
    if args.job:
        result["job"], more = job_rows(Path(args.job))
        rows += more
    width = max(len(r[0]) for r in rows)
    print(f"{'extraction, ' + str(n) + ' clips':<{width}}  {'ours':>10}  {'baseline':>10}")  # noqa: T201
    for name, ours_v, base in rows:
        print(f"{name:<{width}}  {ours_v:>10}  {base:>10}")  # noqa: T201
    print(json.dumps(result))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
