"""The feature schema: FMA's table of feature sizes crossed with statistics, declared once.

Column names follow FMA's ``features.csv`` (feature, statistic, number), flattened
as ``<feature>_<statistic>_<number>``, e.g. ``mfcc_mean_01``, in FMA's order (its
``columns().sort_values()``: feature, then statistic, then number, alphabetically).
Because the names match, FMA's own ``features.csv`` imports directly. Spark
schemas, Mongo documents and the index dimension all derive from this module.
"""

from __future__ import annotations

from typing import Final

FEATURE_SCHEMA_VERSION: Final = 1

FEATURE_SIZES: Final[dict[str, int]] = {
    "chroma_stft": 12,
    "chroma_cqt": 12,
    "chroma_cens": 12,
    "tonnetz": 6,
    "mfcc": 20,
    "rmse": 1,
    "zcr": 1,
    "spectral_centroid": 1,
    "spectral_bandwidth": 1,
    "spectral_contrast": 7,
    "spectral_rolloff": 1,
}
STATISTICS: Final = ("mean", "std", "skew", "kurtosis", "median", "min", "max")

# Feature groups, used to explain why two tracks are close.
FEATURE_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "timbre": ("mfcc", "spectral_contrast"),
    "harmony": ("chroma_stft", "chroma_cqt", "chroma_cens", "tonnetz"),
    "brightness": ("spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "zcr"),
    "energy": ("rmse",),
}


# The mood axes a listener can steer by: each axis and the feature column that measures it. Extract writes
# them by these names into Mongo ``tracks.features``; playlists and the dashboard's steering read them.
MOOD_AXES: Final[dict[str, str]] = {
    "tempo": "tempo",
    "energy": "rmse_mean_01",
    "brightness": "spectral_centroid_mean_01",
    "noisiness": "zcr_mean_01",
}

# The musicnn embedding's space (index.space: musicnn-msd): its columns, and its parts in vector order, which
# the index's "why" names (the network's timbral filters, its temporal ones, its mid end). udfs.musicnn
# computes the embedding; the index reads only these names.
MUSICNN_DIMS: Final = 753
MUSICNN_COLUMNS: Final = tuple(f"musicnn_{i:03d}" for i in range(1, MUSICNN_DIMS + 1))
MUSICNN_PARTS: Final[dict[str, tuple[int, int]]] = {"timbre": (0, 408), "rhythm": (408, 561), "texture": (561, 753)}


def column_name(feature: str, statistic: str, number: int) -> str:
    return f"{feature}_{statistic}_{number:02d}"


def fma_columns() -> list[tuple[str, str, str]]:
    """(feature, statistic, number) triples in FMA's sorted order."""
    triples = [
        (feature, statistic, f"{i + 1:02d}")
        for feature, size in FEATURE_SIZES.items()
        for statistic in STATISTICS
        for i in range(size)
    ]
    return sorted(triples)


FEATURE_COLUMNS: Final[tuple[str, ...]] = tuple(f"{f}_{s}_{n}" for f, s, n in fma_columns())
N_FEATURES: Final = len(FEATURE_COLUMNS)  # 518
EXTRA_COLUMNS: Final = ("tempo",)
ALL_FEATURE_COLUMNS: Final = FEATURE_COLUMNS + EXTRA_COLUMNS
COLUMN_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(FEATURE_COLUMNS)}


def group_of(column: str) -> str:
    """The feature group (timbre, harmony, brightness, energy) a column belongs to."""
    feature = column.rsplit("_", 2)[0]
    for group, members in FEATURE_GROUPS.items():
        if feature in members:
            return group
    raise KeyError(column)


def columns_of(feature: str, statistic: str | None = None) -> list[str]:
    """Column names of one feature (optionally one statistic), in schema order."""
    prefix = f"{feature}_" if statistic is None else f"{feature}_{statistic}_"
    return [c for c in FEATURE_COLUMNS if c.startswith(prefix) and c.rsplit("_", 2)[0] == feature]


def vector_to_bytes(values) -> bytes:
    """The Mongo form of a feature row: 518 little-endian float32 in FEATURE_COLUMNS order."""
    import numpy as np

    arr = np.asarray(values, dtype="<f4")
    if arr.shape != (N_FEATURES,):
        raise ValueError(f"expected {N_FEATURES} feature values, got shape {arr.shape}")
    return arr.tobytes()


def vector_from_bytes(data: bytes):
    """Inverse of :func:`vector_to_bytes`: a float32 array of shape (518,)."""
    import numpy as np

    arr = np.frombuffer(data, dtype="<f4")
    if arr.shape != (N_FEATURES,):
        raise ValueError(f"expected {N_FEATURES * 4} bytes of features, got {len(data)}")
    return arr
