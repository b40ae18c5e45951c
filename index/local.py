"""Fitting and publishing an index version with numpy alone: tests, benchmarks, small catalogues.

The Spark job (``spark_jobs/build_index.py``) fits the same transform with MLlib
and builds shards on executors; both write the same version layout.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from index import store
from index.build import METRIC, auto_shards, build_shard, group_slices, typical_group_scale
from index.catalogue import write_catalogue
from index.manifest import Manifest, Shard


def fit_scaler(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = raw.mean(axis=0)
    std = raw.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def fit_pca(z: np.ndarray, components: int) -> np.ndarray:
    """(columns, components) principal axes of standardized rows; identity when 0 or too many."""
    if components <= 0 or components >= z.shape[1]:
        return np.eye(z.shape[1])
    _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    axes = vt[:components].T
    # Fix each axis's sign (largest coordinate positive) so that fits are reproducible.
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(components)])
    return axes * np.where(signs == 0, 1, signs)


def fit_kmeans(x: np.ndarray, k: int, *, seed: int, iterations: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """(centroids, labels) by Lloyd's algorithm from a seeded k-means++ start.

    Each label is its row's nearest centroid among those returned (the shards are Voronoi cells,
    which the query's shard bound relies on). Distances by matrix products, so hundreds of
    centroids over a million rows stay cheap.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    k = max(1, min(k, len(x)))
    norms = (x * x).sum(axis=1)
    chosen = [int(rng.integers(len(x)))]
    nearest = np.maximum(norms - 2 * x @ x[chosen[0]] + norms[chosen[0]], 0)
    for _ in range(1, k):
        total = float(nearest.sum())
        pick = int(rng.choice(len(x), p=nearest / total)) if total > 0 else int(rng.integers(len(x)))
        chosen.append(pick)
        np.minimum(nearest, np.maximum(norms - 2 * x @ x[pick] + norms[pick], 0), out=nearest)
    c = x[chosen].astype(np.float64)
    labels = nearest_centroid(x, c)
    for _ in range(iterations):
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([np.bincount(labels, weights=x[:, j], minlength=k) for j in range(x.shape[1])], axis=1)
        new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c)
        moved = not np.allclose(new, c)
        c = new
        labels = nearest_centroid(x, c)
        if not moved:
            break
    return c, labels


def nearest_centroid(x: np.ndarray, centroids: np.ndarray, *, chunk: int = 65_536) -> np.ndarray:
    """Each row's nearest centroid (by matrix products, in chunks of rows)."""
    c = np.asarray(centroids, dtype=np.float32)
    c_norms = (c * c).sum(axis=1)
    out = np.empty(len(x), dtype=np.int64)
    for a in range(0, len(x), chunk):
        part = np.asarray(x[a : a + chunk], dtype=np.float32)
        out[a : a + chunk] = (c_norms[None, :] - 2 * part @ c.T).argmin(axis=1)
    return out


def write_transform(folder: Path, mean: np.ndarray, std: np.ndarray, projection: np.ndarray) -> None:
    np.save(folder / "scaler_mean.npy", mean.astype(np.float64))
    np.save(folder / "scaler_std.npy", std.astype(np.float64))
    np.save(folder / "projection.npy", projection.astype(np.float64))


def build_version(
    root: Path,
    ids: np.ndarray,
    raw: np.ndarray,
    columns: list[str],
    *,
    feature_version: str,
    shards: int = 0,
    pca_components: int = 64,
    n_trees: int = 50,
    search_k: int = 5000,
    seed: int = 42,
    keep: int = 3,
    probe: int = 0,
    exact_tracks: int = 20_000,
    version: str | None = None,
    catalogue: pd.DataFrame | None = None,
) -> Path:
    """Fit, build every shard, and publish a version; returns its folder.

    ``catalogue`` (track_id, title, artist_name, genre_top) is published with it.
    """
    version = version or store.new_version_name()
    staging = store.staging_dir(root, version)
    mean, std = fit_scaler(raw)
    z = ((raw - mean) / std).astype(np.float32)
    projection = fit_pca(z, pca_components)
    p = (z.astype(np.float64) @ projection).astype(np.float32)
    centroids, labels = fit_kmeans(p, shards or auto_shards(len(p)), seed=seed)
    write_transform(staging, mean, std, projection)
    shard_rows = []
    for s in range(len(centroids)):
        mask = labels == s
        files = build_shard(
            staging, s, ids=ids[mask], projected=p[mask], standardized=z[mask], n_trees=n_trees, seed=seed
        )
        shard_rows.append(Shard(shard=s, count=int(mask.sum()), centroid=centroids[s].astype(float).tolist(), **files))
    Manifest(
        version=version,
        feature_version=feature_version,
        columns=list(columns),
        dims=int(p.shape[1]),
        metric=METRIC,
        n_trees=n_trees,
        search_k=search_k,
        seed=seed,
        shards=shard_rows,
        created_at=datetime.now(UTC).isoformat(),
        group_scale=typical_group_scale(z, group_slices(list(columns)), seed=seed),
        probe=probe,
        exact_tracks=exact_tracks,
    ).write(staging)
    if catalogue is not None:
        write_catalogue(staging, catalogue)
    return store.publish(root, staging, version, keep=keep)
