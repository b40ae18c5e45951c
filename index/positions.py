"""Where a track lives in an index version: (shard, row), flat positions, ids, per-track attributes.

Part of :class:`index.query.SimilarityIndex` (a mixin over its ``_ids``, lazy lookup tables and lock,
set up in its ``__init__``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from index.manifest import IndexError_


class Positions:
    """Track ids to (shard, row) and back, one at a time or as arrays."""

    def _locate(self, track_id: int) -> tuple[int, int]:
        if self._where is None:
            with self._lock:
                if self._where is None:
                    self._where = {int(t): (s, r) for s, ids in enumerate(self._ids) for r, t in enumerate(ids)}
        try:
            return self._where[int(track_id)]
        except KeyError:
            raise IndexError_(f"track {track_id} is not in index version {self.version!r}") from None

    def __contains__(self, track_id: int) -> bool:
        try:
            self._locate(track_id)
            return True
        except IndexError_:
            return False

    def standardized_of(self, track_id: int) -> np.ndarray:
        shard, row = self._locate(track_id)
        return np.asarray(self.shard_vectors(shard)[row])

    def _flat_positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each shard's first flat position; every indexed id sorted, beside its flat position; each flat
        position's place in that order (ids rank the same as their places). Built once."""
        if self._flat is None:
            with self._lock:
                if self._flat is None:
                    sizes = [len(ids) for ids in self._ids]
                    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
                    ids = self.track_ids().astype(np.int64)
                    order = np.argsort(ids, kind="stable")
                    rank = np.empty(len(ids), np.int64)
                    rank[order] = np.arange(len(ids))
                    self._flat = (offsets, ids[order], order.astype(np.int64), rank)
        return self._flat

    def locate_many(self, track_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(found, shard, row) for each id, by one sorted search; shard and row hold 0 where not found."""
        offsets, sorted_ids, flat_of, _ = self._flat_positions()
        t = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if not len(sorted_ids):
            zero = np.zeros(len(t), np.int64)
            return np.zeros(len(t), bool), zero, zero
        at = np.minimum(np.searchsorted(sorted_ids, t), len(sorted_ids) - 1)
        found = sorted_ids[at] == t
        flat = np.where(found, flat_of[at], 0)
        shard = np.searchsorted(offsets, flat, side="right") - 1
        return found, shard, flat - offsets[shard]

    def flat_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """(each shard's first flat position and, last, the number of tracks; each flat position's id rank),
        built once: what the batched search's kernel (``index.kernels``) walks."""
        offsets, _, _, rank = self._flat_positions()
        return offsets, rank

    def flat_at(self, shards: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """One number per (shard, row): its place in :meth:`track_ids`."""
        return self._flat_positions()[0][np.asarray(shards, np.int64)] + np.asarray(rows, np.int64)

    def id_rank_at(self, flat: np.ndarray) -> np.ndarray:
        """Each flat position's place among the indexed ids sorted: ranks in the order of the track ids."""
        return self._flat_positions()[3][flat]

    def ids_at(self, flat: np.ndarray) -> np.ndarray:
        """The track id at each flat position."""
        _, sorted_ids, _, rank = self._flat_positions()
        return sorted_ids[rank[flat]]

    def shard_rows(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(shard, row) of each flat position (item)."""
        offsets = self._flat_positions()[0]
        shard = np.searchsorted(offsets, items, side="right") - 1
        return shard, items - offsets[shard]

    def points_of(self, items: np.ndarray) -> np.ndarray:
        """The index-space points of the tracks at these flat positions, one row each: one gather from the
        batched search's flat copy once it is made (the points are float32 values, so exact), else per shard."""
        if self._flat64 is not None:
            return self._flat64[0][np.asarray(items, np.int64)].astype(np.float32)
        return self.points_at(*self.shard_rows(items))

    def vectors_of(self, items: np.ndarray) -> np.ndarray:
        """The standardized vectors of the tracks at these flat positions, one row each."""
        return self.standardized_at(*self.shard_rows(items))

    def genres(self) -> np.ndarray:
        """The genre of each flat position, as an object array (built once)."""
        if self._genres is None:
            genres = np.asarray(self.attributes()[1], object)
            with self._lock:
                self._genres = genres
        return self._genres

    def attributes(self) -> tuple[np.ndarray, list[str | None]]:
        """Per flat position (:meth:`flat_at`): an artist code (-1: no artist to cap) and the genre."""
        if self._attributes is None:
            catalogue = self.catalogue
            codes: dict[str, int] = {}
            artist, genre = [], []
            for t in self.track_ids().tolist():
                track = catalogue.get(t)
                name = track.artist if track else None
                artist.append(codes.setdefault(name, len(codes)) if name else -1)
                genre.append(track.genre if track else None)
            with self._lock:
                self._attributes = (np.asarray(artist, np.int64), genre)
        return self._attributes

    def shard_ids(self, shard: int) -> np.ndarray:
        return np.asarray(self._ids[shard])

    def projected_of(self, track_id: int) -> np.ndarray:
        shard, row = self._locate(track_id)
        return np.asarray(self.shard_points(shard)[row], dtype=np.float32)
