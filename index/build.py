"""Building one shard: the Annoy file and its id map, from plain numpy arrays (no Spark, no I/O
beyond the files it writes). The Spark job fits the transform and calls this on each executor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

METRIC = "euclidean"
TRACKS_PER_SHARD = 500  # index.shards 0: about this many tracks per shard ...
MAX_AUTO_SHARDS = 256  # ... up to this many shards (a process holds a file open per shard it has read)


def auto_shards(tracks: int) -> int:
    """The shard count ``index.shards: 0`` means: small shards, each scored exactly by a query that probes it.

    A query costs one distance per centroid plus one per track of each probed shard: 500 tracks a
    shard keeps both small at FMA large's 106,574 tracks (213 shards); a million fill 256 shards of
    about 3,900 (bench.index measures both).
    """
    return max(1, min(MAX_AUTO_SHARDS, round(tracks / TRACKS_PER_SHARD)))


def shard_count(requested: int, tracks: int) -> int:
    """How many shards ``index.shards`` gives ``tracks`` tracks (0: :func:`auto_shards`): at least two tracks each."""
    return max(1, min(requested or auto_shards(tracks), tracks // 2 or 1))


def shard_files(shard: int) -> dict[str, str]:
    stem = f"shard-{shard:03d}"
    return {
        "annoy_file": f"{stem}.ann",
        "ids_file": f"{stem}.ids.npy",
        "vectors_file": f"{stem}.z.npy",
        "points_file": f"{stem}.p.npy",
    }


def build_shard(
    folder: Path,
    shard: int,
    *,
    ids: np.ndarray,
    projected: np.ndarray,
    standardized: np.ndarray,
    n_trees: int,
    seed: int,
    metric: str = METRIC,
) -> dict[str, str]:
    """Write shard ``shard``'s Annoy index (over ``projected``) and its arrays; rows sorted by id.

    The arrays: the ids, the standardized vectors (reasons) and the projected points (the index
    space: what a query scores exactly in a small shard, memory-mapped and shared by processes).

    Deterministic: the same inputs and seed give byte-identical files.
    """
    if not (len(ids) == len(projected) == len(standardized)):
        raise ValueError("ids, projected and standardized must have the same number of rows")
    order = np.argsort(ids, kind="stable")
    ids, projected, standardized = ids[order], projected[order], standardized[order]
    files = shard_files(shard)
    index = AnnoyIndex(projected.shape[1], metric)
    index.set_seed(seed)
    for row, vector in enumerate(projected):
        index.add_item(row, vector)
    index.build(n_trees, n_jobs=1)  # one thread: determinism, and Spark already runs shards in parallel
    index.save(str(folder / files["annoy_file"]))
    index.unload()
    np.save(folder / files["ids_file"], ids.astype(np.int64))
    np.save(folder / files["vectors_file"], standardized.astype(np.float32))
    np.save(folder / files["points_file"], projected.astype(np.float32))
    return files
