"""Reading an index version: memory-mapped shards, nearest-shard probing, a global top-k, reasons.

Cheap to open (files are memory-mapped, not read) and safe to share between
threads: queries only read; the lazy id lookup table is built under a lock.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from index import store
from index.build import group_slices
from index.catalogue import Catalogue
from index.manifest import IndexError_, Manifest

TRANSFORM_FILES = ("scaler_mean.npy", "scaler_std.npy", "projection.npy")
GROUP_WORDS = {
    "timbre": "timbre",
    "harmony": "harmony",
    "brightness": "brightness",
    "energy": "energy",
    "rhythm": "tempo",
    "texture": "texture",  # musicnn's mid end (index.space: musicnn-msd)
}


@dataclass(frozen=True)
class Neighbour:
    track_id: int
    distance: float
    score: float  # 1 / (1 + distance): 1 is identical
    reason: str


class SimilarityIndex:
    """One published (or named) index version, ready to query."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.manifest = Manifest.read(self.folder)
        m = self.manifest
        try:
            self.mean, self.std, self.projection = (np.load(self.folder / f) for f in TRANSFORM_FILES)
            self._annoy, self._ids, self._z = [], [], []
            for shard in m.shards:
                index = AnnoyIndex(m.dims, m.metric)
                index.load(str(self.folder / shard.annoy_file))  # memory-mapped
                self._annoy.append(index)
                self._ids.append(np.load(self.folder / shard.ids_file, mmap_mode="r"))
                self._z.append(np.load(self.folder / shard.vectors_file, mmap_mode="r"))
        except (OSError, ValueError) as exc:
            raise IndexError_(f"index version {self.folder.name!r} is corrupt: {exc}") from None
        if self.projection.shape != (len(m.columns), m.dims):
            raise IndexError_(
                f"index version {self.folder.name!r} is corrupt: projection shape {self.projection.shape}"
            )
        self.centroids = np.asarray([s.centroid for s in m.shards], dtype=np.float32)
        self.slices = group_slices(m.columns)
        # Per-group RMS distance as one matrix product: row g averages the squared differences of group g.
        self._group_names = list(self.slices)
        self._group_mean = np.zeros((len(self.slices), len(m.columns)))
        for i, idx in enumerate(self.slices.values()):
            self._group_mean[i, idx] = 1.0 / len(idx)
        self._group_scale = np.asarray([m.group_scale.get(g, 1.0) for g in self._group_names])
        self._group_mean32 = self._group_mean.T.astype(np.float32)
        self._group_scale32 = self._group_scale.astype(np.float32)
        names = [GROUP_WORDS[g] for g in self._group_names]
        # The reasons by code (:meth:`_reason_codes`): none close, one group, then two.
        self._reason_words = ["similar overall", *(f"close in {a}" for a in names)]
        self._reason_words += [f"close in {a} and {b}" for a in names for b in names]
        self._where: dict[int, tuple[int, int]] | None = None
        self._flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._attributes: tuple[np.ndarray, list[str | None]] | None = None
        self._points: dict[int, np.ndarray] = {}
        self._catalogue: Catalogue | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, root: str | Path, version: str | None = None) -> SimilarityIndex:
        return cls(store.resolve(Path(root), version))

    @property
    def version(self) -> str:
        return self.manifest.version

    def __len__(self) -> int:
        return self.manifest.count

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue snapshot published with this version (loaded on first use)."""
        if self._catalogue is None:
            with self._lock:
                if self._catalogue is None:
                    self._catalogue = Catalogue.load(self.folder, self.track_ids())
        return self._catalogue

    def track_ids(self) -> np.ndarray:
        return np.concatenate([np.asarray(ids) for ids in self._ids]) if self._ids else np.empty(0, np.int64)

    # ------------------------------------------------------------ vectors

    def standardize(self, raw: Sequence[float] | np.ndarray) -> np.ndarray:
        x = np.asarray(raw, dtype=np.float64)
        if x.shape != (len(self.manifest.columns),):
            raise IndexError_(
                f"expected a vector of {len(self.manifest.columns)} values (feature version "
                f"{self.manifest.feature_version!r}, columns {self.manifest.columns[0]}..), got shape {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise IndexError_("the query vector contains NaN or Inf")
        return ((x - self.mean) / self.std).astype(np.float32)

    def project(self, z: np.ndarray) -> np.ndarray:
        return (z.astype(np.float64) @ self.projection).astype(np.float32)

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
        return np.asarray(self._z[shard][row])

    def raw_of(self, track_id: int) -> np.ndarray:
        """The track's feature vector in raw (unstandardized) units: the same in every version."""
        return self.standardized_of(track_id).astype(np.float64) * self.std + self.mean

    def shard_points(self, shard: int) -> np.ndarray:
        """Every track of ``shard`` in the index space (rows as in its id map), read once from its Annoy file."""
        points = self._points.get(shard)
        if points is None:
            annoy = self._annoy[shard]
            points = np.asarray([annoy.get_item_vector(r) for r in range(annoy.get_n_items())], dtype=np.float32)
            points = points.reshape(-1, self.manifest.dims)
            with self._lock:
                self._points[shard] = points
        return points

    def standardized_at(self, shards: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The standardized vectors of the tracks at (shard, row) pairs, one row each."""
        return self._gather(lambda s: self._z[s], shards, rows, len(self.manifest.columns))

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

    # ------------------------------------------------------------ many tracks at once

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

    def where(self, track_ids: Iterable[int]) -> list[tuple[int, int]]:
        """(shard, row) of each catalogued track among ``track_ids``; others are left out."""
        out = []
        for t in track_ids:
            try:
                out.append(self._locate(t))
            except IndexError_:
                continue
        return out

    def projected_of(self, track_id: int) -> np.ndarray:
        shard, row = self._locate(track_id)
        return np.asarray(self._annoy[shard].get_item_vector(row), dtype=np.float32)

    # ------------------------------------------------------------ queries

    def query_vector(
        self, raw: Sequence[float], *, k: int = 10, probe: int | None = None, exclude: Iterable[int] = ()
    ) -> list[Neighbour]:
        """Nearest tracks to a raw feature vector (518 features + tempo)."""
        z = self.standardize(raw)
        return self.query_projected(self.project(z), k=k, probe=probe, exclude=exclude, reference=z)

    def similar_to(
        self, track_id: int, *, k: int = 10, probe: int | None = None, exclude: Iterable[int] = ()
    ) -> list[Neighbour]:
        """Nearest tracks to a catalogued track, the track itself excluded."""
        return self.query_projected(
            self.projected_of(track_id),
            k=k,
            probe=probe,
            exclude={int(track_id), *map(int, exclude)},
            reference=self.standardized_of(track_id),
        )

    def query_projected(
        self,
        p: np.ndarray,
        *,
        k: int = 10,
        probe: int | None = None,
        exclude: Iterable[int] = (),
        reference: np.ndarray | None = None,
        search_k: int | None = None,
    ) -> list[Neighbour]:
        """Top-k over the ``probe`` shards whose centroids are nearest to ``p``.

        When those hold fewer than ``k`` tracks that are not excluded, the next
        nearest shards are visited too, so a catalogue with k tracks left gives k.

        ``probe`` defaults to the manifest's (0 or None: every shard); ``search_k``, the
        Annoy nodes inspected per query, is shared by the probed shards.
        """
        if k < 1:
            raise IndexError_("k must be at least 1")
        p = np.asarray(p, dtype=np.float32)
        if p.shape != (self.manifest.dims,):
            raise IndexError_(f"expected a projected vector of {self.manifest.dims} values, got shape {p.shape}")
        excluded = {int(t) for t in exclude}
        probe = self.manifest.probe if probe is None else probe
        n_probe = len(self._annoy) if not probe else max(1, min(probe, len(self._annoy)))
        order = np.argsort(((self.centroids - p) ** 2).sum(axis=1))
        want = k + len(excluded)
        sk = max(want * 10, (search_k or self.manifest.search_k) // n_probe)
        best: list[tuple[float, int, int, int]] = []
        for visited, shard in enumerate(order):
            # The nearest ``probe`` shards; further ones only while fewer than k tracks were found
            # (small shards, or most of them excluded).
            if visited >= n_probe and len(best) >= k:
                break
            rows, dists = self._annoy[shard].get_nns_by_vector(p, want, search_k=sk, include_distances=True)
            ids = self._ids[shard]
            for row, dist in zip(rows, dists, strict=True):
                tid = int(ids[row])
                if tid not in excluded:
                    best.append((dist, tid, int(shard), row))
        top = heapq.nsmallest(k, best)
        return [
            Neighbour(tid, float(d), round(1.0 / (1.0 + float(d)), 4), self._reason(reference, shard, row))
            for d, tid, shard, row in top
        ]

    def _reason(self, reference: np.ndarray | None, shard: int, row: int) -> str:
        if reference is None:
            return "similar overall"
        return self.explain(reference, np.asarray(self._z[shard][row]))

    def reason_for(self, reference: np.ndarray, track_id: int) -> str:
        """Why ``track_id`` is near the standardized vector ``reference``: its closest feature groups."""
        return self.explain(reference, self.standardized_of(track_id))

    def explain(self, reference: np.ndarray, other: np.ndarray) -> str:
        return self.explain_many(reference, np.asarray(other)[None, :])[0]

    def explain_many(self, reference: np.ndarray, others: np.ndarray) -> list[str]:
        """Why each row of ``others`` (standardized) is near ``reference``: its closest feature groups."""
        others = np.asarray(others)
        return self.explain_pairs(np.broadcast_to(np.asarray(reference), others.shape), others)

    def explain_pairs(self, references: np.ndarray, others: np.ndarray, *, chunk: int = 4096) -> list[str]:
        """Why row i of ``others`` is near row i of ``references``: up to two groups within 0.6 of their scale."""
        codes = [
            self._reason_codes(others[a : a + chunk], references[a : a + chunk]) for a in range(0, len(others), chunk)
        ]
        return self.reason_words(np.concatenate(codes) if codes else np.empty(0, np.int64))

    def explain_at(
        self, references: np.ndarray, ref_of: np.ndarray, shards: np.ndarray, rows: np.ndarray, *, chunk: int = 2048
    ) -> np.ndarray:
        """Reason codes (:meth:`reason_words`) of the track at (shards[i], rows[i]) against ``references[ref_of[i]]``.

        In chunks grouped by shard, so no pair matrix of every track's 519 values is ever built.
        """
        references = np.asarray(references, np.float32)
        shards, rows, ref_of = (np.asarray(a, np.int64) for a in (shards, rows, ref_of))
        codes = np.empty(len(rows), np.int64)
        order = np.argsort(shards, kind="stable")
        for a in range(0, len(order), chunk):
            part = order[a : a + chunk]
            codes[part] = self._reason_codes(self.standardized_at(shards[part], rows[part]), references[ref_of[part]])
        return codes

    def reason_words(self, codes: np.ndarray) -> list[str]:
        return [self._reason_words[c] for c in np.asarray(codes).tolist()]

    def _reason_codes(self, others: np.ndarray, references: np.ndarray) -> np.ndarray:
        """0: no group close; 1 + a: group a; 1 + G + a * G + b: groups a then b (G groups)."""
        diff = np.subtract(others, references, dtype=np.float32)
        np.square(diff, out=diff)
        ratio = np.sqrt(diff @ self._group_mean32) / self._group_scale32[None, :]
        g = len(self._group_names)
        if g < 2:  # a single group: "close in it" or not
            return np.where(ratio[:, 0] < 0.6, 1, 0) if g else np.zeros(len(ratio), np.int64)
        order = np.argsort(ratio, axis=1, kind="stable")[:, :2]
        close = np.take_along_axis(ratio, order, axis=1) < 0.6
        a, b = order[:, 0], order[:, 1]
        return np.where(~close[:, 0], 0, np.where(~close[:, 1], 1 + a, 1 + g + a * g + b))
