"""Fitting an index version: one code for the Spark job and the plain-Python build, on the same numbers.

Both paths reduce the catalogue to the same inputs and call these functions on them, so a library
built either way gives the same index (``tests/integration/test_etl.py`` checks it):

- the scaler and the PCA from the raw rows' :class:`Moments` (count, column sums, and the Gram matrix
  of the rows centred on the mean): Spark sums them over partitions (:meth:`Moments.of` per
  partition, then ``+``), numpy takes them in one call;
- every row's standardized vector and point by :func:`transform` (a pandas UDF on executors);
- the shard centroids by k-means (:func:`fit_kmeans`) over the points of a sample chosen by track id
  (:func:`sample_ids`: at most ``KMEANS_SAMPLE`` tracks, all of a smaller catalogue), in track-id order;
- each track's shard: its nearest centroid (:func:`nearest_centroid`), so shards are Voronoi cells;
- the reasons' typical group distances from the standardized vectors of another such sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.manifest import TRANSFORM_FILES

KMEANS_SAMPLE = 200_000  # tracks whose points fit the centroids (at 64 dims, 51 MB on the driver)
GROUP_SAMPLE = 4_000  # tracks whose standardized vectors set the reasons' scale


@dataclass(frozen=True)
class Moments:
    """Count, column sums and the Gram matrix of rows centred on ``centre`` (a first pass's mean)."""

    count: int
    total: np.ndarray
    gram: np.ndarray

    @classmethod
    def of(cls, raw: np.ndarray, centre: np.ndarray) -> Moments:
        """The moments of ``raw`` (rows, columns) around ``centre`` (columns,)."""
        d = np.asarray(raw, np.float64) - centre
        return cls(len(d), d.sum(axis=0), d.T @ d)

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.count + other.count, self.total + other.total, self.gram + other.gram)


def fit_scaler(moments: Moments, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per column (the population std; 1 where a column is constant)."""
    n = max(moments.count, 1)
    shift = moments.total / n  # the mean's offset from the centre: ~0 when the centre is a first pass's mean
    mean = centre + shift
    var = np.diag(moments.gram) / n - shift * shift
    std = np.sqrt(np.maximum(var, 0.0))
    return mean, np.where(std > 0, std, 1.0)


def fit_pca(moments: Moments, std: np.ndarray, components: int) -> np.ndarray:
    """(columns, components) principal axes of the standardized rows; the identity when 0 or too many.

    The eigenvectors of the standardized rows' covariance, largest eigenvalue first; each axis's
    sign fixed (its largest coordinate positive) so that fits are reproducible.
    """
    width = len(std)
    if components <= 0 or components >= width:
        return np.eye(width)
    n = max(moments.count, 1)
    shift = moments.total / n
    cov = (moments.gram / n - np.outer(shift, shift)) / np.outer(std, std)
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    axes = vectors[:, np.argsort(values, kind="stable")[::-1][:components]]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(components)])
    return axes * np.where(signs == 0, 1, signs)


def transform(
    raw: np.ndarray, mean: np.ndarray, std: np.ndarray, projection: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(standardized float32, points float32) of raw rows: what both paths store for every track."""
    z = ((np.asarray(raw, np.float64) - mean) / std).astype(np.float32)
    return z, (z.astype(np.float64) @ projection).astype(np.float32)


def sample_ids(ids: np.ndarray, size: int, *, seed: int) -> np.ndarray:
    """At most ``size`` of ``ids``, sorted: all of them when there are no more, else a seeded choice."""
    ids = np.unique(np.asarray(ids, np.int64))
    if len(ids) <= size:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=size, replace=False))


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


def fit_centroids(points: np.ndarray, k: int, *, seed: int) -> np.ndarray:
    """The shards' centroids: :func:`fit_kmeans` over the sampled ``points`` (track-id order), each centroid
    the nearest of at least one of them (so no shard is empty)."""
    centroids, labels = fit_kmeans(points, k, seed=seed)
    return centroids[np.bincount(labels, minlength=len(centroids)) > 0]


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
    for name, array in zip(TRANSFORM_FILES, (mean, std, projection), strict=True):
        np.save(folder / name, np.asarray(array, np.float64))
