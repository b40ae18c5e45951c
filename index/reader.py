"""The index's read API: open a version, look tracks up, ask for the nearest tracks of one or many points.

Everything outside ``index/`` that reads an index uses :class:`Index` (import-linter's "protected"
contract keeps the engine's modules to this package). It speaks catalogue track ids and *items*: a
track's place in this version, ``0 .. len(index) - 1``, as an Annoy item number is. Batched answers
(:class:`Hits`) carry the items of what they found, so a caller asks for their points, vectors,
artists or reasons without a second lookup. Items mean nothing across versions; track ids do.

Shapes: ``columns`` is the version's raw feature count (``manifest.columns``: 518 + tempo, or
musicnn's 753); ``dims`` the index space's (``manifest.dims``, the PCA's components). Vectors in
*raw* units are what extract wrote; *standardized* ones are centred and scaled per column (what
reasons compare); *points* are standardized vectors projected into the index space (what distances
are measured in).

Opening a version reads its manifest, transform and id maps and memory-maps the rest; it imports no
build code and no model (a contract in pyproject.toml says so). An :class:`Index` is safe to share
between threads: queries only read, and its lazy tables are built under a lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from index import kernels, store
from index.batched import Hits, nearest_flat
from index.catalogue import Catalogue
from index.manifest import IndexError_, Manifest
from index.query import Neighbour, SimilarityIndex
from index.radio import radio_many

__all__ = ["Hits", "Index", "IndexError_", "Neighbour"]


class Index:
    """One published (or named) index version, read-only."""

    def __init__(self, folder: str | Path):
        self._engine = SimilarityIndex(Path(folder))

    @classmethod
    def open(cls, root: str | Path, version: str | None = None) -> Index:
        """The published version under ``root`` (or the named one); :class:`IndexError_` when there is none."""
        return cls(store.resolve(Path(root), version))

    # ------------------------------------------------------------ what it is

    @property
    def version(self) -> str:
        return self._engine.manifest.version

    @property
    def folder(self) -> Path:
        """The version's folder (its name is the version)."""
        return self._engine.folder

    @property
    def manifest(self) -> Manifest:
        """The version's description: columns, dims, feature version, shards, build parameters (read only)."""
        return self._engine.manifest

    @property
    def catalogue(self) -> Catalogue:
        """Title, artist and genre of the tracks, as published with this version (loaded on first use)."""
        return self._engine.catalogue

    def __len__(self) -> int:
        return len(self._engine)

    def __contains__(self, track_id: int) -> bool:
        return track_id in self._engine

    # ------------------------------------------------------------ looking tracks up

    def items(self, track_ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """(n,) int64: each track's item, -1 where the track is not in this version."""
        t = np.fromiter((int(x) for x in track_ids), np.int64) if not isinstance(track_ids, np.ndarray) else track_ids
        found, shard, row = self._engine.locate_many(t)
        return np.where(found, self._engine.flat_at(shard, row), -1)

    def track_ids(self, items: np.ndarray | None = None) -> np.ndarray:
        """(n,) int64: the track id of each item (of every item, in item order, when ``items`` is None)."""
        if items is None:
            return self._engine.track_ids()
        return self._engine.ids_at(self._checked(items))

    def points(self, items: np.ndarray) -> np.ndarray:
        """(n, dims) float32: the items' points in the index space."""
        return self._engine.points_of(self._checked(items))

    def nearest_among(self, items: np.ndarray, candidates: np.ndarray, table: np.ndarray) -> np.ndarray:
        """(n,) int64: for item ``items[a]``, the entry of ``table[a]`` (places in ``candidates``, which are items;
        -1 pads, never first) whose candidate's point is nearest its own (squared distance in float32; the first
        of equals), in one compiled pass (``index.kernels``)."""
        table = np.ascontiguousarray(table, np.int64)
        if not len(table):
            return np.empty(0, np.int64)
        kernels.ready()
        column = kernels.nearest_among(self.points(items), self.points(candidates), table)
        return table[np.arange(len(table)), column]

    def vectors(self, items: np.ndarray, *, raw: bool = False) -> np.ndarray:
        """(n, columns): the items' standardized vectors (float32), or in raw units (float64, the same in every
        version of one space)."""
        z = self._engine.vectors_of(self._checked(items))
        return z.astype(np.float64) * self._engine.std + self._engine.mean if raw else z

    def artists(self) -> np.ndarray:
        """(len,) int64: an artist code per item (equal codes, one artist; -1: no artist known)."""
        return self._engine.attributes()[0]

    def genres(self) -> np.ndarray:
        """(len,) object: the catalogue's top genre per item (None where unknown)."""
        return self._engine.genres()

    # ------------------------------------------------------------ the index space

    def standardize(self, raw: Sequence[float] | np.ndarray) -> np.ndarray:
        """(columns,) or (n, columns) raw -> standardized float32; :class:`IndexError_` on a wrong width or NaN."""
        x = np.asarray(raw, dtype=np.float64)
        if x.ndim == 1:
            return self._engine.standardize(x)
        if x.ndim != 2 or x.shape[1] != len(self.manifest.columns):
            raise IndexError_(f"expected rows of {len(self.manifest.columns)} values, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise IndexError_("a query vector contains NaN or Inf")
        return ((x - self._engine.mean) / self._engine.std).astype(np.float32)

    def project(self, z: np.ndarray) -> np.ndarray:
        """(…, columns) standardized -> (…, dims) float32 points."""
        return self._engine.project(z)

    # ------------------------------------------------------------ nearest tracks

    def nearest(
        self, points: np.ndarray, *, k: int, exclude: Sequence[set[int]] | None = None, probe: int | None = None
    ) -> Hits:
        """The ``k`` nearest tracks to each row of ``points`` (n, dims), leaving ``exclude[i]`` out for row i.

        Exact within the shards each query probes (``probe``, the manifest's by default; 0: all); a
        query left with fewer than ``k`` widens to further shards. One flat :class:`Hits`, sorted by
        query, nearest first within it (ties by track id); ``hits.split(n)`` gives one per query.
        """
        return nearest_flat(self._engine, np.asarray(points, np.float32), k=k, exclude=exclude, probe=probe)

    def neighbours(
        self,
        point: np.ndarray,
        *,
        k: int = 10,
        exclude: Iterable[int] = (),
        probe: int | None = None,
        reference: np.ndarray | None = None,
    ) -> list[Neighbour]:
        """The ``k`` nearest tracks to one ``point`` (dims,), with reasons against ``reference`` (a standardized
        (columns,) vector) when one is given, else "similar overall"."""
        return self._engine.query_projected(point, k=k, exclude=exclude, probe=probe, reference=reference)

    def similar(
        self,
        track_id: int,
        *,
        k: int = 10,
        exclude: Iterable[int] = (),
        probe: int | None = None,
        reasons: bool = True,
    ) -> list[Neighbour]:
        """The ``k`` tracks nearest a catalogued track (itself left out), with reasons unless ``reasons`` is False
        (then each says "similar overall": working reasons out is most of a single query's cost)."""
        if reasons:
            return self._engine.similar_to(track_id, k=k, exclude=exclude, probe=probe)
        point = self._engine.projected_of(track_id)
        return self._engine.query_projected(point, k=k, exclude={int(track_id), *map(int, exclude)}, probe=probe)

    def search(
        self, raw: Sequence[float], *, k: int = 10, exclude: Iterable[int] = (), probe: int | None = None
    ) -> list[Neighbour]:
        """The ``k`` tracks nearest a raw feature vector (columns,), with reasons."""
        return self._engine.query_vector(raw, k=k, exclude=exclude, probe=probe)

    def explain(self, references: np.ndarray, of: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(n,) object: why item ``items[i]`` is near the standardized vector ``references[of[i]]`` (references:
        (q, columns)), in words ("close in timbre and harmony")."""
        codes = self._engine.explain_items(references, of, self._checked(items))
        return self._engine.reason_table()[codes]

    # ------------------------------------------------------------ walks through the space

    def radio(
        self, seeds: Sequence[int], *, length: int = 20, artist_of: Mapping[int, object] | None = None, **policy
    ) -> list[list[Neighbour]]:
        """A song radio per seed track: ``length`` tracks that stay near it, no repeats, the artists spread
        (``index.radio.radio_many``'s policy; artists from the catalogue unless given)."""
        artist_of = self.catalogue.artist_of() if artist_of is None else artist_of
        return radio_many(self._engine, seeds, length=length, artist_of=artist_of, **policy)

    def path(self, start: int, end: int, steps: int, *, keep=lambda track_id: True) -> list[Neighbour]:
        """Up to ``steps`` tracks between two catalogued ones: each the nearest unused track (``keep`` says which
        may be used) to the next of ``steps`` points evenly along the straight line between them."""
        a, b = (self._engine.projected_of(t) for t in (start, end))
        used, out = {int(start), int(end)}, []
        for t in np.linspace(0, 1, steps + 2)[1:-1]:
            near = self._engine.query_projected((1 - t) * a + t * b, k=3, exclude=used)
            step = next((n for n in near if keep(n.track_id)), None)
            if step is not None:
                used.add(step.track_id)
                out.append(step)
        return out

    # ------------------------------------------------------------ for operators

    def memory_bytes(self) -> int:
        """What this process holds in memory for the version (the rest is memory-mapped)."""
        return self._engine.memory_bytes()

    def _checked(self, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, np.int64).reshape(-1)
        if len(items) and (items.min() < 0 or items.max() >= len(self)):
            raise IndexError_(f"items must lie in 0..{len(self) - 1} (version {self.version!r})")
        return items
