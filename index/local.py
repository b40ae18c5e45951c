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
from index.build import METRIC, build_shard, group_slices, typical_group_scale
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
    """(centroids, labels) by Lloyd's algorithm from a seeded k-means++ start."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(x)))
    centroids = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min(((x[:, None, :] - np.asarray(centroids)[None]) ** 2).sum(axis=2), axis=1)
        centroids.append(x[rng.choice(len(x), p=d / d.sum()) if d.sum() > 0 else rng.integers(len(x))])
    c = np.asarray(centroids)
    labels = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        labels = ((x[:, None, :] - c[None]) ** 2).sum(axis=2).argmin(axis=1)
        new = np.asarray([x[labels == j].mean(axis=0) if np.any(labels == j) else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c, labels


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
    shards: int = 4,
    pca_components: int = 64,
    n_trees: int = 50,
    search_k: int = 5000,
    seed: int = 42,
    keep: int = 3,
    probe: int = 0,
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
    centroids, labels = fit_kmeans(p, shards, seed=seed)
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
    ).write(staging)
    if catalogue is not None:
        write_catalogue(staging, catalogue)
    return store.publish(root, staging, version, keep=keep)
