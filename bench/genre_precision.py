"""Same-genre precision@10 on an extracted library: our index space against the original project's recipe.

The quality half of ``bench.index``: the features in Delta under ``paths.lake_root`` (when an
extracted library is there), each track's 10 nearest with its own artist left out, the share in the
query's genre; the recipe is 13 MFCC means and stds, the centroid mean and the ZCR mean, unscaled.
"""

from __future__ import annotations

import numpy as np


def genre_precision(settings) -> dict | None:
    """Same-genre precision@10, artist excluded: our index space against the original recipe."""
    try:
        from deltalake import DeltaTable

        feats = DeltaTable(settings.lake_table("features")).to_pandas()
        tracks = DeltaTable(settings.lake_table("tracks")).to_pandas()
    except Exception:  # noqa: BLE001 - no extracted library here: the measure is skipped
        return None
    feats = feats[feats["feature_version"] == settings.extract.feature_version]
    data = feats.merge(tracks[["track_id", "genre_top", "artist_name"]], on="track_id")
    data = data[data["genre_top"].notna()]
    if len(data) < 50:
        return None
    from index.fit import Moments, fit_pca, fit_scaler
    from udfs.schema import FEATURE_COLUMNS

    cols = [*FEATURE_COLUMNS, "tempo"]
    raw = data[cols].to_numpy(dtype=np.float64)
    moments = Moments.of(raw, raw.mean(axis=0))
    mean, std = fit_scaler(moments, raw.mean(axis=0))
    z = (raw - mean) / std
    ours = z @ fit_pca(moments, std, settings.index.pca_components)
    recipe_cols = [f"mfcc_mean_{i:02d}" for i in range(1, 14)] + [f"mfcc_std_{i:02d}" for i in range(1, 14)]
    recipe_cols += ["spectral_centroid_mean_01", "zcr_mean_01"]
    original = data[recipe_cols].to_numpy(dtype=np.float64)
    genres, artists = data["genre_top"].to_numpy(), data["artist_name"].to_numpy()

    def precision(space: np.ndarray) -> float:
        scores = []
        for i in range(len(space)):
            d = ((space - space[i]) ** 2).sum(axis=1)
            d[artists == artists[i]] = np.inf  # the query's own artist (and itself) excluded
            top = np.argsort(d)[:10]
            scores.append(np.mean(genres[top] == genres[i]))
        return float(np.mean(scores))

    chance = float(np.mean([np.mean(genres == g) for g in genres]))
    return {
        "tracks": len(data),
        "genres": int(len(set(genres))),
        "ours": round(precision(ours), 3),
        "original_recipe": round(precision(original), 3),
        "chance": round(chance, 3),
    }
