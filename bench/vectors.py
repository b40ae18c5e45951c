"""The index benchmark's data: clustered vectors in the index space, and the exact answer to compare with."""

from __future__ import annotations

import numpy as np


def clustered_vectors(n: int, dims: int, *, seed: int = 0, clusters: int = 161) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.0, size=(clusters, dims)).astype(np.float32)
    spread = rng.uniform(0.4, 0.8, size=clusters).astype(np.float32)
    labels = rng.integers(0, clusters, size=n)
    return centers[labels] + rng.normal(size=(n, dims)).astype(np.float32) * spread[labels, None]


def exact_topk(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    norms = (x * x).sum(axis=1)
    out = []
    for q in queries:
        d = norms - 2 * x @ q
        top = np.argpartition(d, k)[:k]
        out.append(top[np.argsort(d[top])])
    return np.asarray(out)
