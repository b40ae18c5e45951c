"""An index version's shard data as arrays: each shard's points read once, and the shards' lower bounds.

Part of :class:`index.query.SimilarityIndex` (a mixin over its ``folder``, ``manifest``, centroids and
lazy per-shard caches, all set up in its ``__init__``).
"""

from __future__ import annotations

import numpy as np


class ShardPoints:
    """Each shard's index-space points, their norms and the Voronoi lower bound of a query's distance."""

    def shard_points(self, shard: int) -> np.ndarray:
        """Every track of ``shard`` in the index space (rows as in its id map), read once: its points file (a
        version without one: the Annoy file)."""
        points = self._points.get(shard)
        if points is None:
            name = self.manifest.shards[shard].points_file
            if name:
                points = np.load(self.folder / name)
            else:
                annoy = self.trees(shard)
                points = np.asarray([annoy.get_item_vector(r) for r in range(annoy.get_n_items())], np.float32)
            points = points.reshape(-1, self.manifest.dims)
            with self._lock:
                self._points[shard] = points
        return points

    def memory_bytes(self) -> int:
        """What this process holds in memory for the index (ids, the points and norms read so far, the bound's
        table); the Annoy files and standardized vectors are memory-mapped, read from the page cache on demand."""
        held = [*self._ids, *self._points.values(), *(self._flat64 or ()), *self._norms.values(), self._centroids64]
        if self._inverse_gap is not None:
            held.append(self._inverse_gap)
        return int(sum(a.nbytes for a in held))

    def flat_points64(self) -> tuple[np.ndarray, np.ndarray]:
        """Every track's point in double precision (tracks, dims: flat positions as rows), and their squared
        lengths; made once. The batched search (``index.kernels``) scores a shard's rows for each query that
        visits it. Twice the float32 points' memory (54 MB at 106,574 tracks of 64), in the
        processes that use the batched path (the stream's workers)."""
        if self._flat64 is None:
            points = np.concatenate([self.shard_points(s) for s in range(len(self.manifest.shards))]).astype(np.float64)
            norms = np.einsum("ij,ij->i", points, points)
            with self._lock:
                self._flat64 = (points, norms)
        return self._flat64

    def shard_norms(self, shard: int) -> np.ndarray:
        """The squared length of each of ``shard``'s points, in double precision (computed once)."""
        norms = self._norms.get(shard)
        if norms is None:
            points = self.shard_points(shard).astype(np.float64)
            norms = np.einsum("ij,ij->i", points, points)
            with self._lock:
                self._norms[shard] = norms
        return norms

    def shard_bounds(self, points: np.ndarray) -> np.ndarray:
        """(queries, shards): a lower bound on the distance from each query to any track of each shard.

        Shards are k-means (Voronoi) cells: every track of shard j is at least as near its centroid
        c_j as the query's nearest centroid c_1, so it lies beyond the hyperplane halfway between
        them, at least (|q - c_j|^2 - |q - c_1|^2) / (2 |c_j - c_1|) from the query. 0 for the nearest
        shard (and for a shard whose centroid coincides with it).
        """
        points = np.asarray(points, np.float64).reshape(-1, self.manifest.dims)
        d2 = self._centroid_norms[None, :] - 2 * points @ self._centroids64.T
        nearest = d2.argmin(axis=1)
        excess = d2 - d2[np.arange(len(points)), nearest][:, None]
        np.maximum(excess, 0, out=excess)
        return excess * self._inverse_gaps(nearest)

    def _inverse_gaps(self, nearest: np.ndarray) -> np.ndarray:
        """1 / (2 |c_j - c_i|) for each i in ``nearest`` (rows) and every shard j; 0 where the centroids coincide."""
        c = self._centroids64
        if self._inverse_gap is None:  # one row per shard, built once when the table is small enough (64 MB)
            if len(c) <= 2896:
                table = self._gap_rows(np.arange(len(c)))
                with self._lock:
                    self._inverse_gap = table
            else:
                return self._gap_rows(nearest)
        return self._inverse_gap[nearest]

    def _gap_rows(self, rows: np.ndarray) -> np.ndarray:
        c, norms = self._centroids64, self._centroid_norms
        twice = 2 * np.sqrt(np.maximum(norms[None, :] - 2 * c[rows] @ c.T + norms[rows][:, None], 0))
        return np.divide(1.0, twice, out=np.zeros_like(twice), where=twice > 1e-9)

    def standardized_at(self, shards: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The standardized vectors of the tracks at (shard, row) pairs, one row each."""
        return self._gather(self.shard_vectors, shards, rows, len(self.manifest.columns))

    def points_at(self, shards: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The index-space points of the tracks at (shard, row) pairs."""
        return self._gather(self.shard_points, shards, rows, self.manifest.dims)

    @staticmethod
    def _gather(source, shards: np.ndarray, rows: np.ndarray, width: int) -> np.ndarray:
        """Rows of each shard's matrix (``source(shard)``), one fancy index per shard present."""
        shards, rows = np.asarray(shards, np.int64), np.asarray(rows, np.int64)
        out = np.empty((len(rows), width), np.float32)
        if not len(rows):
            return out
        order = np.argsort(shards, kind="stable")
        for part in np.split(order, np.flatnonzero(np.diff(shards[order])) + 1):
            out[part] = source(int(shards[part[0]]))[rows[part]]
        return out
