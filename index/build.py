"""Building one shard: the Annoy file and its id map, from plain numpy arrays (no Spark, no I/O
beyond the files it writes). The Spark job fits the transform and calls this on each executor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from udfs.musicnn import COLUMNS as MUSICNN_COLUMNS
from udfs.musicnn import PARTS as MUSICNN_PARTS
from udfs.schema import FEATURE_COLUMNS, FEATURE_GROUPS

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


def group_slices(columns: list[str]) -> dict[str, np.ndarray]:
    """Column positions of each feature group in the raw vector (tempo is "rhythm").

    In musicnn's space the groups are the network's parts: its timbral filters, its temporal
    ("rhythm") filters and its mid-end layers ("texture"), in ``udfs.musicnn.PARTS``.
    """
    if columns and columns[0] == MUSICNN_COLUMNS[0]:
        return {g: np.arange(lo, hi, dtype=np.int64) for g, (lo, hi) in MUSICNN_PARTS.items() if hi <= len(columns)}
    position = {c: i for i, c in enumerate(columns)}
    groups: dict[str, list[int]] = {g: [] for g in FEATURE_GROUPS}
    for c in FEATURE_COLUMNS:
        feature = c.rsplit("_", 2)[0]
        for g, members in FEATURE_GROUPS.items():
            if feature in members and c in position:
                groups[g].append(position[c])
    out = {g: np.asarray(v, dtype=np.int64) for g, v in groups.items() if v}
    if "tempo" in position:
        out["rhythm"] = np.asarray([position["tempo"]], dtype=np.int64)
    return out


def group_distances(a: np.ndarray, b: np.ndarray, slices: dict[str, np.ndarray]) -> dict[str, float]:
    """Root-mean-square difference per feature group between standardized vectors."""
    return {g: float(np.sqrt(np.mean((a[idx] - b[idx]) ** 2))) for g, idx in slices.items()}


def typical_group_scale(
    standardized: np.ndarray, slices: dict[str, np.ndarray], *, seed: int, pairs: int = 2000
) -> dict[str, float]:
    """The median per-group distance between random pairs: what "close" is measured against."""
    rng = np.random.default_rng(seed)
    n = len(standardized)
    if n < 2:
        return {g: 1.0 for g in slices}
    a = rng.integers(0, n, size=pairs)
    b = rng.integers(0, n, size=pairs)
    out = {}
    for g, idx in slices.items():
        d = np.sqrt(np.mean((standardized[a][:, idx] - standardized[b][:, idx]) ** 2, axis=1))
        out[g] = float(np.median(d)) or 1.0
    return out
