"""Reading an index version: memory-mapped shards, nearest-shard probing, a global top-k, reasons.

Cheap to open (files are memory-mapped, not read) and safe to share between
threads: queries only read; the lazy id lookup table is built under a lock.
"""

from __future__ import annotations

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
            self._ids = [np.load(self.folder / shard.ids_file) for shard in m.shards]
            for shard in m.shards:
                self._check_files(shard)
        except (OSError, ValueError) as exc:
            raise IndexError_(f"index version {self.folder.name!r} is corrupt: {exc}") from None
        # Opened on first use (one descriptor each): a query reads only the shards it probes.
        self._annoy: list[AnnoyIndex | None] = [None] * len(m.shards)
        self._z: list[np.ndarray | None] = [None] * len(m.shards)
        self._points: dict[int, np.ndarray] = {}
        self._points64: dict[int, np.ndarray] = {}
        if self.projection.shape != (len(m.columns), m.dims):
            raise IndexError_(
                f"index version {self.folder.name!r} is corrupt: projection shape {self.projection.shape}"
            )
        self.centroids = np.asarray([s.centroid for s in m.shards], dtype=np.float32).reshape(-1, m.dims)
        self._centroids64 = self.centroids.astype(np.float64)  # the bound in double: no cancellation to speak of
        self._centroid_norms = (self._centroids64**2).sum(axis=1)
        self._norms: dict[int, np.ndarray] = {}
        self._inverse_gap: np.ndarray | None = None
        self.slices = group_slices(m.columns)
        # Per-group RMS distance as one matrix product: row g averages the squared differences of group g.
        self._group_names = list(self.slices)
        self._group_mean = np.zeros((len(self.slices), len(m.columns)))
        for i, idx in enumerate(self.slices.values()):
            self._group_mean[i, idx] = 1.0 / len(idx)
        self._group_scale = np.asarray([m.group_scale.get(g, 1.0) for g in self._group_names])
        self._group_mean_t = np.ascontiguousarray(self._group_mean.T)
        names = [GROUP_WORDS[g] for g in self._group_names]
        # The reasons by code (:meth:`_reason_codes`): none close, one group, then two.
        self._reason_words = ["similar overall", *(f"close in {a}" for a in names)]
        self._reason_words += [f"close in {a} and {b}" for a in names for b in names]
        self._where: dict[int, tuple[int, int]] | None = None
        self._flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._attributes: tuple[np.ndarray, list[str | None]] | None = None
        self._catalogue: Catalogue | None = None
        self._lock = threading.Lock()

    def _check_files(self, shard) -> None:
        """Fail at open, not at the first query, on a shard whose files are missing or cut short."""
        node = 16 + 4 * self.manifest.dims  # an Annoy euclidean node: descendants, offset, two children, the vector
        size = (self.folder / shard.annoy_file).stat().st_size
        if size % node or size // node < shard.count:
            raise ValueError(f"{shard.annoy_file} holds {size} bytes, not the nodes of {shard.count} items")
        for name in (shard.vectors_file, shard.points_file):
            if name and not (self.folder / name).is_file():
                raise ValueError(f"{name} is missing")

    def trees(self, shard: int) -> AnnoyIndex:
        """``shard``'s Annoy index, memory-mapped on first use."""
        index = self._annoy[shard]
        if index is None:
            index = AnnoyIndex(self.manifest.dims, self.manifest.metric)
            try:
                index.load(str(self.folder / self.manifest.shards[shard].annoy_file))
            except OSError as exc:
                raise IndexError_(f"index version {self.folder.name!r} is corrupt: {exc}") from None
            with self._lock:
                self._annoy[shard] = index
        return index

    def shard_vectors(self, shard: int) -> np.ndarray:
        """``shard``'s standardized vectors (rows as in its id map), memory-mapped on first use."""
        z = self._z[shard]
        if z is None:
            z = np.load(self.folder / self.manifest.shards[shard].vectors_file, mmap_mode="r")
            with self._lock:
                self._z[shard] = z
        return z

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
        return np.asarray(self.shard_vectors(shard)[row])

    def raw_of(self, track_id: int) -> np.ndarray:
        """The track's feature vector in raw (unstandardized) units: the same in every version."""
        return self.standardized_of(track_id).astype(np.float64) * self.std + self.mean

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
        held = [*self._ids, *self._points.values(), *self._points64.values(), *self._norms.values(), self._centroids64]
        if self._inverse_gap is not None:
            held.append(self._inverse_gap)
        return int(sum(a.nbytes for a in held))

    def shard_points64(self, shard: int) -> np.ndarray:
        """``shard``'s points in double precision, kept once made: the batched path's products (``index.batched``)
        need them for every group of queries, and a copy per group was most of a small group's cost. Twice the
        float32 points' memory, in the processes that use the batched path (the stream's workers)."""
        points = self._points64.get(shard)
        if points is None:
            points = self.shard_points(shard).astype(np.float64)
            with self._lock:
                self._points64[shard] = points
        return points

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
        return np.asarray(self.shard_points(shard)[row], dtype=np.float32)

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
        """Top-k over the shards that can hold the nearest tracks to ``p``, at most ``probe`` of them.

        Shards are visited by their lower bound (:meth:`shard_bounds`), nearest first, and the visit
        stops at the first shard whose bound is no nearer than the k-th track found: no track there
        could enter the top k. ``probe`` caps the visit (the manifest's by default; 0 or None: no
        cap, and with every shard scored exactly the answer is exact). When the visited shards hold
        fewer than ``k`` tracks that are not excluded, further shards are visited too, so a catalogue
        with k tracks left gives k.

        A shard of up to ``exact_tracks`` tracks is scored exactly (one matrix-vector product over
        its points); a larger one is searched with its Annoy trees, inspecting ``search_k`` nodes
        (the manifest's by default). Reasons are worked out for the k tracks returned, when a
        ``reference`` (the query's standardized vector) is given.
        """
        if k < 1:
            raise IndexError_("k must be at least 1")
        p = np.asarray(p, dtype=np.float32)
        if p.shape != (self.manifest.dims,):
            raise IndexError_(f"expected a projected vector of {self.manifest.dims} values, got shape {p.shape}")
        excluded = np.fromiter({int(t) for t in exclude}, dtype=np.int64)
        probe = self.manifest.probe if probe is None else probe
        cap = len(self._ids) if not probe else max(1, probe)
        want = k + len(excluded)
        sk = search_k or self.manifest.search_k
        bounds = self.shard_bounds(p)[0]
        squared_bounds = bounds * bounds
        found_d, found_s, found_r = [], [], []
        kth = np.inf  # the k-th smallest squared distance found so far
        have = 0
        for visited, shard in enumerate(np.argsort(bounds, kind="stable").tolist()):
            if have >= k and (visited >= cap or squared_bounds[shard] >= kth):
                break
            rows, dist = self._search_shard(shard, p, want, sk)
            if len(excluded):
                keep = ~np.isin(self._ids[shard][rows], excluded)
                rows, dist = rows[keep], dist[keep]
            found_d.append(dist)
            found_s.append(np.full(len(rows), shard, np.int64))
            found_r.append(rows)
            have += len(rows)
            if have >= k:
                d = np.concatenate(found_d) if len(found_d) > 1 else dist
                kth = float(np.partition(d, k - 1)[k - 1])
        if not have:
            return []
        sh, rw = np.concatenate(found_s), np.concatenate(found_r)
        t = self._flat_ids(sh, rw)
        top = np.lexsort((t, np.concatenate(found_d)))[: k + 2]  # two spare: the exact distances may reorder them
        sh, rw, t = sh[top], rw[top], t[top]
        chosen = np.asarray([self.shard_points(a)[b] for a, b in zip(sh.tolist(), rw.tolist(), strict=True)])
        diff = chosen.reshape(-1, len(p)).astype(np.float64) - p  # measured directly: no cancellation
        d = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        top = np.lexsort((t, d))[:k]
        d, sh, rw, t = d[top], sh[top], rw[top], t[top]
        if reference is None:
            reasons = ["similar overall"] * len(top)
        else:
            reference = np.asarray(reference, np.float32)[None, :]
            reasons = self.reason_words(self._reason_codes(self.standardized_at(sh, rw), reference))
        return [
            Neighbour(int(tid), float(dist), round(1.0 / (1.0 + float(dist)), 4), reason)
            for tid, dist, reason in zip(t.tolist(), d.tolist(), reasons, strict=True)
        ]

    def _flat_ids(self, shards: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.asarray([self._ids[s][r] for s, r in zip(shards.tolist(), rows.tolist(), strict=True)], np.int64)

    def _search_shard(self, shard: int, p: np.ndarray, want: int, search_k: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, squared distances) of up to ``want`` of ``shard``'s tracks nearest ``p``: exact in a small shard."""
        if self.manifest.shards[shard].count > self.manifest.exact_tracks:
            rows, dists = self.trees(shard).get_nns_by_vector(
                p.tolist(), want, search_k=max(search_k, want * 10), include_distances=True
            )
            return np.asarray(rows, np.int64), np.square(np.asarray(dists, np.float32))
        points = self.shard_points(shard)
        d = self.shard_norms(shard) - 2 * (points @ p)
        d += p @ p
        if want >= len(d):
            return np.arange(len(d)), d
        rows = np.argpartition(d, want - 1)[:want]
        return rows, d[rows]

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
        # In double precision: a float32 product rounds a row differently with the rows beside it, and a
        # reason must not change with how a micro-batch was composed (a restart equals an undisturbed run).
        ratio = np.sqrt(diff.astype(np.float64) @ self._group_mean_t) / self._group_scale[None, :]
        g = len(self._group_names)
        if g < 2:  # a single group: "close in it" or not
            return np.where(ratio[:, 0] < 0.6, 1, 0) if g else np.zeros(len(ratio), np.int64)
        order = np.argsort(ratio, axis=1, kind="stable")[:, :2]
        close = np.take_along_axis(ratio, order, axis=1) < 0.6
        a, b = order[:, 0], order[:, 1]
        return np.where(~close[:, 0], 0, np.where(~close[:, 1], 1 + a, 1 + g + a * g + b))
