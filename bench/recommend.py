# ruff: noqa: T201 - a benchmark prints its table
"""Recommending many listeners at once: the compiled batched search against the numpy one it replaced.

    python -m bench.recommend                    # 1,000 and 12,000 listeners, 106,574 tracks
    python -m bench.recommend --listeners 2000   # other sizes (comma-separated)

The stream recommends every listener a micro-batch touched with ``recommend.rank.recommend_many``, in
calls of ``--call`` listeners (the stream's ``SERVE_CHUNK``, 200). Its candidates come from the
batched search: ``index.batched`` with the compiled kernels (``index.kernels``) now, beside
``bench.numpy_search`` (one float64 matrix product per shard and group, as it was). Both run on
the same synthetic index (FMA large's track count, 161 genres, the index settings build-index uses)
and the same tastes (ten liked tracks of one or two genres each; every third listener also skipped
three tracks of another genre, so the "away from what you skipped" path runs), one after the other
in one process with one BLAS thread, as each of the stream's Python workers has. The answers must be
identical: every listener's twenty items, ids, scores and reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads: one thread, as in a Spark Python worker

import numpy as np  # noqa: E402

from bench.listeners import _taste  # noqa: E402
from bench.numpy_search import numpy_nearest_flat  # noqa: E402
from conf.settings import load_settings  # noqa: E402
from index.local import build_version  # noqa: E402
from index.reader import Hits, Index  # noqa: E402
from index.synthetic import COLUMNS, synthetic_catalogue  # noqa: E402
from recommend.rank import recommend_many  # noqa: E402
from recommend.taste import Taste  # noqa: E402

HALF_LIFE_MS = 7 * 24 * 3_600_000


class NumpySearchIndex(Index):
    """An index whose batched search is the numpy one (the baseline); everything else as served."""

    def nearest(self, points: np.ndarray, *, k: int, exclude=None, probe: int | None = None) -> Hits:
        return numpy_nearest_flat(self._engine, np.asarray(points, np.float32), k=k, exclude=exclude, probe=probe)


def build_index(root: Path, tracks: int) -> Path:
    cfg = load_settings({}).index
    per_genre = max(10, tracks // 8)
    ids, raw, frame = synthetic_catalogue(per_genre=per_genre, artists_per_genre=max(5, per_genre // 10), seed=3)
    build_version(
        root, ids, raw, COLUMNS, feature_version="fma-v1", catalogue=frame, shards=cfg.shards, probe=cfg.probe,
        exact_tracks=cfg.exact_tracks, n_trees=cfg.n_trees, search_k=cfg.search_k,
        pca_components=cfg.pca_components, seed=cfg.seed,
    )  # fmt: skip
    return root


def tastes_of(index: Index, n: int, *, seed: int = 0) -> list[Taste]:
    rng = np.random.default_rng(seed)
    catalogue = index.catalogue
    genres = [g for g in catalogue.genres() if catalogue.ids_of_genre(g)]
    by_genre = {g: np.asarray(catalogue.ids_of_genre(g), np.int64) for g in genres}
    ids = index.track_ids()
    raw = index.vectors(np.arange(len(index)), raw=True)
    row_of = {int(t): i for i, t in enumerate(ids)}
    now = 1_800_000_000_000
    out = []
    for j in range(n):
        liked_genres = rng.choice(genres, size=1 + j % 2, replace=False)
        pool = np.concatenate([by_genre[g] for g in liked_genres])
        taste = _taste(rng.choice(pool, size=min(10, len(pool)), replace=False), raw, row_of, catalogue, now_ms=now)
        if j % 3 == 0:
            other = rng.choice([g for g in genres if g not in liked_genres])
            for t in rng.choice(by_genre[other], size=3, replace=False).tolist():
                taste.apply("skip", t, now, raw[row_of[t]], genre=other, half_life_ms=HALF_LIFE_MS)
        out.append(taste)
    return out


def timed(index: Index, tastes: list[Taste], call: int) -> tuple[float, list]:
    recommend_many(index, tastes[:call])  # warm: the kernels' compilation, the shards read once
    started = time.perf_counter()
    answers = []
    for a in range(0, len(tastes), call):
        answers += recommend_many(index, tastes[a : a + call])
    return (time.perf_counter() - started) * 1000 / len(tastes), answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recommend", description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=106_574, help="tracks in the synthetic index")
    parser.add_argument("--listeners", default="1000,12000", help="listeners per row (comma-separated)")
    parser.add_argument("--call", type=int, default=200, help="listeners per recommend_many call (the stream's)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="earshot-bench-recommend-") as tmp:
        folder = build_index(Path(tmp), args.tracks)
        ours, baseline = Index.open(folder), NumpySearchIndex.open(folder)
        rows = []
        for n in (int(x) for x in args.listeners.split(",")):
            tastes = tastes_of(ours, n)
            base_ms, base_answers = timed(baseline, tastes, args.call)
            ours_ms, answers = timed(ours, tastes, args.call)
            differ = sum(a != b for a, b in zip(answers, base_answers, strict=True))
            rows.append({"listeners": n, "call": args.call, "numpy_ms_per_listener": round(base_ms, 4),
                         "compiled_ms_per_listener": round(ours_ms, 4), "speedup": round(base_ms / ours_ms, 2),
                         "answers_differ": differ})  # fmt: skip
        result = {"bench": "recommend", "tracks": len(ours), "rows": rows}
    print(f"recommend_many over {result['tracks']:,} tracks, {args.call} listeners a call, one BLAS thread")
    print(f"{'listeners':>10} {'numpy search ms':>16} {'compiled ms':>12} {'speedup':>8} {'answers differ':>15}")
    for r in rows:
        print(f"{r['listeners']:>10,} {r['numpy_ms_per_listener']:>16.3f} {r['compiled_ms_per_listener']:>12.3f} "
              f"{r['speedup']:>7.2f}x {r['answers_differ']:>15}")  # fmt: skip
    print(json.dumps(result))
    return 0 if all(r["answers_differ"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
