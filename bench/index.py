# ruff: noqa: T201 - a command-line tool: it prints its table
"""Index benchmark: recall, latency, build time and size, with exact search and hnswlib beside ours.

    python -m bench.index              # 106,574 vectors (FMA large), 2,000 queries
    python -m bench.index --full       # also 1,000,000 vectors (build time and recall)

Vectors are clustered synthetic ones in the index space (``index.pca_components``
dimensions after standardisation and PCA; 161 clusters like FMA's genres).
Ours is the partitioned index as the query library serves it (k-means shards,
nearest-shard probing, a merged top-k, through ``SimilarityIndex``, the engine behind ``index.reader.Index``); a single
Annoy index with the design's reference settings, hnswlib, and exact numpy
search run beside it. Then the quality measure: same-genre precision@10 with
the query's artist excluded, on the extracted sample library (Delta under
``paths.lake_root``) when it is there, against the original project's recipe
(13 MFCC means and stds, centroid mean, ZCR mean, unscaled, euclidean).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.genre_precision import genre_precision
from bench.vectors import clustered_vectors, exact_topk
from conf.settings import load_settings
from index import store
from index.batched import nearest_many
from index.build import METRIC, auto_shards, build_shard
from index.fit import fit_kmeans, nearest_centroid, write_transform
from index.manifest import Manifest, Shard
from index.query import SimilarityIndex


def _build_one(args: tuple) -> dict:
    folder, shard, ids, vectors, n_trees, seed = args
    return build_shard(
        Path(folder), shard, ids=ids, projected=vectors, standardized=vectors[:, :1], n_trees=n_trees, seed=seed
    )


def build_ours(
    root: Path, x: np.ndarray, *, shards: int, n_trees: int, search_k: int, seed: int, workers: int, exact_tracks: int
) -> tuple[float, Path]:
    """A partitioned version of ``x`` (already in index space); shards built in parallel like executors."""
    started = time.perf_counter()
    ids = np.arange(len(x), dtype=np.int64)
    sample = x[np.random.default_rng(seed).choice(len(x), size=min(len(x), 20_000), replace=False)]
    centroids, _ = fit_kmeans(sample, shards, seed=seed, iterations=15)
    labels = nearest_centroid(x, centroids)
    version = "bench"
    staging = store.staging_dir(root, version)
    jobs = [(str(staging), s, ids[labels == s], x[labels == s], n_trees, seed) for s in range(len(centroids))]
    with mp.get_context("fork").Pool(workers) as pool:
        files = pool.map(_build_one, jobs)
    dims = x.shape[1]
    write_transform(staging, np.zeros(1), np.ones(1), np.eye(1, dims))
    Manifest(
        version=version,
        feature_version="bench",
        columns=["x"],
        dims=dims,
        metric=METRIC,
        n_trees=n_trees,
        search_k=search_k,
        seed=seed,
        created_at="",
        probe=0,
        exact_tracks=exact_tracks,
        shards=[
            Shard(shard=s, count=int((labels == s).sum()), centroid=centroids[s].tolist(), **f)
            for s, f in enumerate(files)
        ],
    ).write(staging)
    folder = store.publish(root, staging, version, keep=1)
    return time.perf_counter() - started, folder


def latency(fn, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    results, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - t0)
    return np.asarray(results), times


PROBES = (1, 2, 3, 4, 8)
ANNOY_K = (500, 1000, 1500, 2000, 3000, 5000)


def _measure(fn, queries: np.ndarray, truth: np.ndarray) -> dict:
    found, times = latency(fn, queries)
    return {"recall10": round(recall(found, truth), 4), "p50_ms": round(pct(times, 50), 3),
            "p99_ms": round(pct(times, 99), 3), "qps": round(len(times) / sum(times), 1)}  # fmt: skip


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times) * 1000, q))


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def fastest_at(frontier: list[dict], at_least: float) -> dict | None:
    """The frontier point with the lowest p99 among those at recall >= ``at_least``."""
    fit = [r for r in frontier if r["recall10"] >= at_least]
    return min(fit, key=lambda r: r["p99_ms"]) if fit else None


def batched(index: SimilarityIndex, queries: np.ndarray, truth: np.ndarray, *, probe: int, batch: int) -> dict:
    """Many queries at once, as the stream asks (:func:`index.batched.nearest_many`), ``batch`` a call.

    Recall on the measured queries; throughput on ``batch`` queries a call over ten times as many
    (the measured ones again, each with fresh noise), after one untimed call.
    """
    found = [pool.track_ids for pool in nearest_many(index, queries, k=10, probe=probe)]
    noise = np.random.default_rng(2).normal(scale=0.05, size=(10, *queries.shape)).astype(np.float32)
    many = (queries[None] + noise).reshape(-1, queries.shape[1])
    started = time.perf_counter()
    for a in range(0, len(many), batch):
        nearest_many(index, many[a : a + batch], k=10, probe=probe)
    seconds = time.perf_counter() - started
    return {"probe": probe, "batch": batch, "recall10": round(recall(np.asarray(found), truth), 4),
            "qps": round(len(many) / seconds, 1)}  # fmt: skip


def run_scale(n: int, dims: int, *, n_queries: int, settings, workers: int, with_baselines: bool) -> dict:
    cfg = settings.index
    x = clustered_vectors(n, dims)
    rng = np.random.default_rng(1)
    queries = x[rng.choice(n, size=n_queries, replace=False)] + rng.normal(scale=0.05, size=(n_queries, dims)).astype(
        np.float32
    )
    truth = exact_topk(x, queries, 10)
    shards = cfg.shards or auto_shards(n)
    out: dict = {"n": n, "dims": dims, "shards": shards, "probe": cfg.probe}
    with tempfile.TemporaryDirectory() as tmp:
        build_s, folder = build_ours(
            Path(tmp),
            x,
            shards=shards,
            n_trees=cfg.n_trees,
            search_k=cfg.search_k,
            seed=cfg.seed,
            workers=workers,
            exact_tracks=cfg.exact_tracks,
        )
        index = SimilarityIndex(folder)
        for s in range(len(index.centroids)):  # a serving process reads every shard once
            index.shard_norms(s)
        index.shard_bounds(queries[:1])
        out["ours_memory_mb"] = round(index.memory_bytes() / 2**20, 1)
        ask = {p: (lambda q, p=p: [h.track_id for h in index.query_projected(q, k=10, probe=p)]) for p in PROBES}
        for q in queries[:50]:
            ask[cfg.probe or 1](q)
        out["ours_frontier"] = [{"probe": p, **_measure(ask[p], queries, truth)} for p in PROBES]
        out["ours_default"] = (
            {"probe": cfg.probe, **_measure(ask[cfg.probe], queries, truth)} if cfg.probe in ask else {}
        )
        out["ours_batched"] = [
            batched(index, queries, truth, probe=p, batch=b) for p in sorted({2, cfg.probe}) for b in (500, 5000)
        ]
        out["ours_build_s"] = round(build_s, 2)
        out["ours_size_mb"] = round(folder_size(folder) / 2**20, 1)
    if not with_baselines:
        return out
    _, times = latency(lambda q: exact_topk(x, q[None], 10)[0], queries[:50])
    out["exact"] = {"recall10": 1.0, "p50_ms": round(pct(times, 50), 3), "p99_ms": round(pct(times, 99), 3)}
    from annoy import AnnoyIndex

    t0 = time.perf_counter()
    single = AnnoyIndex(dims, "euclidean")
    single.set_seed(cfg.seed)
    for i, v in enumerate(x):
        single.add_item(i, v)
    single.build(cfg.n_trees, n_jobs=workers)
    out["annoy_build_s"] = round(time.perf_counter() - t0, 2)
    out["annoy_frontier"] = [
        {
            "search_k": sk,
            **_measure(lambda q, s=sk: single.get_nns_by_vector(q.tolist(), 10, search_k=s), queries, truth),
        }
        for sk in ANNOY_K
    ]
    import hnswlib

    t0 = time.perf_counter()
    h = hnswlib.Index(space="l2", dim=dims)
    h.init_index(max_elements=n, ef_construction=200, M=16, random_seed=cfg.seed)
    h.add_items(x, np.arange(n), num_threads=workers)
    h.set_ef(64)
    h.set_num_threads(1)
    hnsw_build = time.perf_counter() - t0
    out["hnswlib"] = {**_measure(lambda q: h.knn_query(q, k=10)[0][0], queries, truth), "build_s": round(hnsw_build, 2)}
    # Equal recall: each of our frontier points beside the fastest plain Annoy setting that reaches its recall.
    out["equal_recall"] = [
        {"probe": r["probe"], "recall10": r["recall10"], "ours_p99_ms": r["p99_ms"],
         "annoy_search_k": a["search_k"] if a else None, "annoy_p99_ms": a["p99_ms"] if a else None}
        for r in out["ours_frontier"] for a in [fastest_at(out["annoy_frontier"], r["recall10"])]
    ]  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.index", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="also build and query 1,000,000 vectors")
    parser.add_argument("--n", type=int, default=106_574)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args(argv)
    settings = load_settings()
    dims = settings.index.pca_components or 519
    result = {
        "bench": "index",
        "shards": settings.index.shards,
        "n_trees": settings.index.n_trees,
        "search_k": settings.index.search_k,
        "fma_scale": run_scale(args.n, dims, n_queries=args.queries, settings=settings, workers=2, with_baselines=True),
    }
    if args.full:
        result["million"] = run_scale(
            1_000_000, dims, n_queries=200, settings=settings, workers=2, with_baselines=False
        )
    result["genre_precision"] = genre_precision(settings)
    result["targets"] = {
        "recall10": 0.98,
        "p99_ms": 0.5,
        "build_s_fma": 10,
        "build_s_million": 120,
        "genre_precision": 0.5,
    }

    f = result["fma_scale"]
    print(
        f"index over {f['n']:,} x {dims}: ours {f['shards']} shards (index.shards {settings.index.shards}), "
        f"probe {f['probe']}, scored exactly up to {settings.index.exact_tracks:,} tracks a shard; "
        f"annoy {settings.index.n_trees} trees"
    )
    print(f"{'':<30}{'recall@10':>10}{'p50 ms':>9}{'p99 ms':>9}{'q/s':>9}{'build s':>9}")
    rows = [(f"ours, probe {r['probe']}", r, f["ours_build_s"]) for r in f["ours_frontier"]]
    rows += [(f"annoy, search_k {r['search_k']}", r, f["annoy_build_s"]) for r in f["annoy_frontier"]]
    rows += [("hnswlib (M 16, ef 64)", f["hnswlib"], f["hnswlib"]["build_s"]), ("exact numpy", f["exact"], 0.0)]
    for name, r, build in rows:
        qps = f"{r['qps']:>9.0f}" if "qps" in r else f"{'':>9}"
        print(f"{name:<30}{r['recall10']:>10.4f}{r['p50_ms']:>9.3f}{r['p99_ms']:>9.3f}{qps}{build:>9.2f}")
    for b in f["ours_batched"]:
        print(
            f"ours batched, probe {b['probe']}, {b['batch']} a call: recall@10 {b['recall10']:.4f}, {b['qps']:,.0f} q/s"
        )
    print(f"ours: {f['ours_size_mb']} MB on disk, {f['ours_memory_mb']} MB held in memory once every shard is read")
    print("at equal recall (the fastest plain Annoy setting reaching ours):")
    for e in f["equal_recall"]:
        annoy = (
            f"annoy search_k {e['annoy_search_k']} p99 {e['annoy_p99_ms']} ms" if e["annoy_search_k"] else "annoy: none"
        )
        print(f"  probe {e['probe']}: recall {e['recall10']:.4f}, ours p99 {e['ours_p99_ms']} ms; {annoy}")
    if "million" in result:
        m = result["million"]
        for r in m["ours_frontier"]:
            print(
                f"1,000,000 x {dims}, {m['shards']} shards: build {m['ours_build_s']} s, probe {r['probe']}: "
                f"recall@10 {r['recall10']}, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms"
            )
        print(f"1,000,000: {m['ours_size_mb']} MB on disk, {m['ours_memory_mb']} MB held in memory")
        for b in m["ours_batched"]:
            print(
                f"1,000,000 batched, probe {b['probe']}, {b['batch']} a call: recall@10 {b['recall10']:.4f}, "
                f"{b['qps']:,.0f} q/s"
            )
    g = result["genre_precision"]
    if g:
        print(
            f"same-genre precision@10, artist excluded ({g['tracks']} tracks, {g['genres']} genres): "  # noqa: T201
            f"ours {g['ours']}, original recipe {g['original_recipe']}, chance {g['chance']}"
        )
    else:
        print("same-genre precision: no extracted library under paths.lake_root (run the demo first)")  # noqa: T201
    print(json.dumps(result))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
