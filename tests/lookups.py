"""One track's vector or point through the index's read API (:class:`index.reader.Index`), for tests."""

from __future__ import annotations

import numpy as np

from index.reader import Index


def raw_of(index: Index, track_id: int) -> np.ndarray:
    """(columns,) float64: the track's feature vector in raw units."""
    return index.vectors(_item(index, track_id), raw=True)[0]


def point_of(index: Index, track_id: int) -> np.ndarray:
    """(dims,) float32: the track's point in the index space."""
    return index.points(_item(index, track_id))[0]


def _item(index: Index, track_id: int) -> np.ndarray:
    item = index.items([int(track_id)])
    assert item[0] >= 0, f"track {track_id} is not in index version {index.version}"
    return item
