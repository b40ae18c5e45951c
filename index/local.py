"""Fitting and publishing an index version in one process: tests, benchmarks, small catalogues.

The same fitting code as the Spark job (``spark_jobs/build_index.py``), on the same inputs: the
functions of ``index.fit`` (the job runs them over partitions and on executors) and ``index.build``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from index import fit, store
from index.build import METRIC, build_shard, shard_count
from index.catalogue import write_catalogue
from index.groups import group_slices, typical_group_scale
from index.manifest import Manifest, Shard


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
    ids, raw = np.asarray(ids, np.int64), np.asarray(raw, np.float64)
    centre = raw.mean(axis=0)
    moments = fit.Moments.of(raw, centre)
    mean, std = fit.fit_scaler(moments, centre)
    projection = fit.fit_pca(moments, std, pca_components)
    z, p = fit.transform(raw, mean, std, projection)
    order = np.argsort(ids, kind="stable")
    fitted = order[np.isin(ids[order], fit.sample_ids(ids, fit.KMEANS_SAMPLE, seed=seed))]
    centroids = fit.fit_centroids(p[fitted], shard_count(shards, len(p)), seed=seed)
    labels = fit.nearest_centroid(p, centroids)
    fit.write_transform(staging, mean, std, projection)
    shard_rows = [
        Shard(shard=s, count=int((labels == s).sum()), centroid=centroids[s].astype(float).tolist(),
              **build_shard(staging, s, ids=ids[labels == s], projected=p[labels == s], standardized=z[labels == s],
                            n_trees=n_trees, seed=seed))  # fmt: skip
        for s in range(len(centroids))
    ]
    scaled = order[np.isin(ids[order], fit.sample_ids(ids, fit.GROUP_SAMPLE, seed=seed))]
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
        group_scale=typical_group_scale(z[scaled], group_slices(list(columns)), seed=seed),
        probe=probe,
        exact_tracks=exact_tracks,
    ).write(staging)
    if catalogue is not None:
        write_catalogue(staging, catalogue)
    return store.publish(root, staging, version, keep=keep)
