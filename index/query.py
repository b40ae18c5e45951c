"""Reading an index version: memory-mapped shards, nearest-shard probing, a global top-k, reasons.

:class:`SimilarityIndex` opens a version and answers queries; its shard arrays (``index.points``), the
id lookups (``index.positions``) and the reasons (``index.reasons``) are mixins in their own modules.

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
from index.catalogue import Catalogue
from index.groups import group_slices
from index.manifest import TRANSFORM_FILES, IndexError_, Manifest
from index.points import ShardPoints
from index.positions import Positions
from index.reasons import Reasons


@dataclass(frozen=True)
class Neighbour:
    track_id: int
    distance: float
    score: float  # 1 / (1 + distance): 1 is identical
    reason: str


class SimilarityIndex(ShardPoints, Positions, Reasons):
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
        self._flat64: tuple[np.ndarray, np.ndarray] | None = None
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
        self._init_reasons(self.slices, m.group_scale, len(m.columns))
        self._where: dict[int, tuple[int, int]] | None = None
        self._flat: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._attributes: tuple[np.ndarray, list[str | None]] | None = None
        self._genres: np.ndarray | None = None
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
        """``shard``'s standardized vectors (rows as in its id map), memory-mapped on first use.

        Held as a plain array over the mapping (``np.asarray``): the same pages, without ``np.memmap``'s
        Python-level indexing on every gather (the stream gathers from many shards per micro-batch).
        """
        z = self._z[shard]
        if z is None:
            z = np.asarray(np.load(self.folder / self.manifest.shards[shard].vectors_file, mmap_mode="r"))
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
        found = self._visit(p, k, excluded, cap, search_k or self.manifest.search_k)
        if found is None:
            return []
        return self._nearest_first(p, k, *found, reference=reference)

    def _visit(
        self, p: np.ndarray, k: int, excluded: np.ndarray, cap: int, search_k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(squared distances, shards, rows) of the candidates from the shards :meth:`query_projected` visits."""
        want = k + len(excluded)
        bounds = self.shard_bounds(p)[0]
        squared_bounds = bounds * bounds
        found_d, found_s, found_r = [], [], []
        kth = np.inf  # the k-th smallest squared distance found so far
        have = 0
        for visited, shard in enumerate(np.argsort(bounds, kind="stable").tolist()):
            if have >= k and (visited >= cap or squared_bounds[shard] >= kth):
                break
            rows, dist = self._search_shard(shard, p, want, search_k)
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
            return None
        return np.concatenate(found_d), np.concatenate(found_s), np.concatenate(found_r)

    def _nearest_first(
        self, p: np.ndarray, k: int, d: np.ndarray, sh: np.ndarray, rw: np.ndarray, *, reference: np.ndarray | None
    ) -> list[Neighbour]:
        """The ``k`` nearest candidates by their exact distance to ``p`` (ties by track id), with reasons."""
        t = self._flat_ids(sh, rw)
        top = np.lexsort((t, d))[: k + 2]  # two spare: the exact distances may reorder them
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
