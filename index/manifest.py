"""The manifest of an index version: what was built, from what, and how to read it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

MANIFEST_FILE = "manifest.json"
TRANSFORM_FILES = ("scaler_mean.npy", "scaler_std.npy", "projection.npy")  # the scaler's mean and std, the PCA
FORMAT = 1


class IndexError_(RuntimeError):
    """An index version is missing, corrupt or asked something it cannot answer."""


@dataclass(frozen=True)
class Shard:
    shard: int
    count: int
    annoy_file: str
    ids_file: str
    vectors_file: str  # standardized full vectors, float32, for reasons and exact re-ranking
    centroid: list[float]
    points_file: str = ""  # projected points, float32 (versions before it: read from the Annoy file)


@dataclass(frozen=True)
class Manifest:
    version: str
    feature_version: str
    columns: list[str]  # the raw feature columns, in vector order
    dims: int  # the index space (after projection)
    metric: str
    n_trees: int
    search_k: int
    seed: int
    shards: list[Shard]
    created_at: str
    group_scale: dict[str, float] = field(default_factory=dict)  # typical per-group distance
    probe: int = 0  # the most shards a query visits by default (fewer when the rest cannot be nearer); 0: all
    exact_tracks: int = 20_000  # a probed shard of up to this many tracks is scored exactly; larger: its Annoy trees
    format: int = FORMAT

    @property
    def count(self) -> int:
        return sum(s.count for s in self.shards)

    def write(self, folder: Path) -> None:
        (folder / MANIFEST_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST_FILE
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != FORMAT:
                raise IndexError_(f"{path}: unsupported index format {raw.get('format')!r}")
            raw["shards"] = [Shard(**s) for s in raw["shards"]]
            return cls(**raw)
        except FileNotFoundError:
            raise IndexError_(f"index version {folder.name!r} has no manifest at {path}") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise IndexError_(f"index version {folder.name!r} is corrupt: bad manifest ({exc})") from None
