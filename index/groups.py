"""The feature groups an index explains its answers by: their columns, and what "close" is in each.

Read by the query side (the reasons) and the build side (the typical distances it publishes); it
imports no model, only the schema's names.
"""

from __future__ import annotations

import numpy as np

from udfs.schema import FEATURE_COLUMNS, FEATURE_GROUPS, MUSICNN_COLUMNS, MUSICNN_PARTS


def group_slices(columns: list[str]) -> dict[str, np.ndarray]:
    """Column positions of each feature group in the raw vector (tempo is "rhythm").

    In musicnn's space the groups are the network's parts: its timbral filters, its temporal
    ("rhythm") filters and its mid-end layers ("texture"), in ``udfs.schema.MUSICNN_PARTS``.
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
