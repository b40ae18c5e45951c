"""Do the served neighbours sound alike? Same-label precision of ``similar`` on a labelled library.

A library whose tracks carry a label that people hear (the real-music library of
``services/real-music.sh``: the soundtrack a recording comes from, kept as its genre;
FMA: the top genre) is run through the pipeline once (``./spark-submit.sh demo --music DIR
--no-serve``); this reads its Delta ``tracks`` and ``features`` and its published index, and
asks, for every track, what fraction of its k nearest share its label:

- **served**: the published index's ``similar`` (what the dashboard, ``similar`` and the radio
  start from: standardized, PCA-projected, sharded Annoy);
- **original recipe**: 13 MFCC means and stds, the spectral centroid mean and the ZCR mean,
  unscaled euclidean, exact;
- **518 standardized**: every FMA feature and tempo standardized, euclidean, exact;
- **chance**: the share of the other tracks with the query's label;
- **candidates** for a better space (exact search): feature blocks weighted equally,
  unstable statistics (skew, kurtosis, min, max) dropped, cosine.

``--artist-filter`` leaves a query's own artist out of its candidates (where artists are
known), so one composer's habits do not count as similarity. Prints a table and one JSON line.

    python -m bench.quality --library .earshot/real-music
    python -m bench.quality --lake .earshot/lake --index .earshot/index     # the synthetic demo
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from conf.settings import load_settings
from index.reader import Index
from udfs.schema import FEATURE_COLUMNS, MUSICNN_COLUMNS, column_name

KS = (5, 10)
RECIPE = (
    [column_name("mfcc", "mean", i) for i in range(1, 14)]
    + [column_name("mfcc", "std", i) for i in range(1, 14)]
    + [column_name("spectral_centroid", "mean", 1), column_name("zcr", "mean", 1)]
)


def library_paths(library: Path) -> tuple[Path, Path]:
    """The lake and index root the demo built for ``library`` (``demo --music``)."""
    from tools.demo import music_environment

    env = music_environment(load_settings(), library.expanduser().resolve())
    return Path(env["EARSHOT_LAKE_ROOT"]), Path(env["EARSHOT_INDEX_ROOT"])


def read_library(lake: Path, index: Index) -> pd.DataFrame:
    """One row per indexed, labelled track: label, artist and the feature version the index was built from."""
    from deltalake import DeltaTable

    tracks = DeltaTable(str(lake / "tracks")).to_pandas()
    features = DeltaTable(str(lake / "features")).to_pandas()
    features = features[features["feature_version"] == index.manifest.feature_version]
    if (lake / "embeddings").exists():  # musicnn's, beside the features (extract.embedding)
        emb = DeltaTable(str(lake / "embeddings")).to_pandas()
        emb = emb[(emb["feature_version"] == index.manifest.feature_version) & (emb["model"] == "musicnn-msd")]
        features = features.merge(emb[["track_id", "vector"]].rename(columns={"vector": "embedding"}), on="track_id")
    if "gone" in tracks:
        tracks = tracks[~tracks["gone"].fillna(False).astype(bool)]
    frame = features.merge(tracks[["track_id", "genre_top", "artist_name"]], on="track_id")
    frame = frame[frame["track_id"].isin(set(index.track_ids().tolist()))]
    frame = frame.rename(columns={"genre_top": "label", "artist_name": "artist"})
    frame = frame[frame["label"].notna() & (frame["label"] != "")]
    return frame.sort_values("track_id").reset_index(drop=True)


def precision_exact(x: np.ndarray, labels: np.ndarray, exclude: np.ndarray, k: int) -> float:
    """Mean same-label share of each row's k nearest rows (euclidean), ``exclude[i, j]`` rows left out."""
    sq = (x * x).sum(axis=1)
    d = sq[:, None] - 2 * x @ x.T + sq[None, :]
    d[exclude] = np.inf
    hits = []
    for i in range(len(x)):
        finite = np.isfinite(d[i])
        want = min(k, int(finite.sum()))
        if not want:
            continue
        near = np.argsort(d[i], kind="stable")[:want]
        hits.append(float(np.mean(labels[near] == labels[i])))
    return float(np.mean(hits)) if hits else float("nan")


def precision_served(index: Index, ids: np.ndarray, labels: np.ndarray, exclude: np.ndarray, k: int) -> float:
    label_of = dict(zip(ids.tolist(), labels.tolist(), strict=True))
    hits = []
    for i, tid in enumerate(ids.tolist()):
        excluded = set(ids[exclude[i]].tolist()) - {tid}
        found = index.similar(tid, k=k, exclude=excluded)
        got = [label_of.get(n.track_id) for n in found]
        if got:
            hits.append(float(np.mean([g == labels[i] for g in got])))
    return float(np.mean(hits)) if hits else float("nan")


def chance(labels: np.ndarray, exclude: np.ndarray) -> float:
    same = labels[:, None] == labels[None, :]
    allowed = ~exclude
    return float(np.mean([same[i][allowed[i]].mean() for i in range(len(labels)) if allowed[i].any()]))


def measure(frame: pd.DataFrame, index: Index, *, artist_filter: bool) -> dict:
    ids = frame["track_id"].to_numpy(np.int64)
    labels = frame["label"].astype(str).to_numpy()
    n = len(ids)
    exclude = np.eye(n, dtype=bool)
    if artist_filter:
        artists = frame["artist"].fillna("").astype(str).to_numpy()
        known = artists != ""
        exclude |= (artists[:, None] == artists[None, :]) & known[:, None]
    columns = [*FEATURE_COLUMNS, "tempo"] if frame["tempo"].notna().all() else list(FEATURE_COLUMNS)
    full = frame[columns].to_numpy(np.float64)
    ok = np.isfinite(full).all(axis=1)
    full_std = (full - full[ok].mean(axis=0)) / np.where(full[ok].std(axis=0) > 0, full[ok].std(axis=0), 1.0)
    recipe = frame[RECIPE].to_numpy(np.float64)
    space = "musicnn-msd" if index.manifest.columns[0] == MUSICNN_COLUMNS[0] else "features"
    rows = {
        f"served (similar, {space} space)": {k: precision_served(index, ids, labels, exclude, k) for k in KS},
        "original recipe (28 numbers, unscaled)": {k: precision_exact(recipe, labels, exclude, k) for k in KS},
        "518 + tempo standardized, euclidean": {k: precision_exact(full_std, labels, exclude, k) for k in KS},
    }
    p = chance(labels, exclude)
    # Candidate spaces for the index (exact search, the same queries): each block of one feature weighs the
    # same (84 chroma values no longer outvote 140 MFCC ones... or 1 tempo), unstable statistics dropped,
    # and the angle instead of the distance.
    block = np.asarray([c.rsplit("_", 2)[0] if c != "tempo" else "tempo" for c in columns])
    weights = np.asarray([1.0 / np.sqrt((block == b).sum()) for b in block])
    steady = np.asarray([c == "tempo" or c.rsplit("_", 2)[1] in ("mean", "std", "median") for c in columns])
    unit = full_std / np.maximum(np.linalg.norm(full_std, axis=1, keepdims=True), 1e-9)
    rows["candidate: feature blocks weighted equally"] = {
        k: precision_exact(full_std * weights, labels, exclude, k) for k in KS
    }
    rows["candidate: mean/std/median only"] = {k: precision_exact(full_std[:, steady], labels, exclude, k) for k in KS}
    rows["candidate: cosine on standardized"] = {k: precision_exact(unit, labels, exclude, k) for k in KS}
    if "embedding" in frame:
        emb = np.stack(frame["embedding"].to_numpy()).astype(np.float64)
        emb_std = (emb - emb.mean(axis=0)) / np.where(emb.std(axis=0) > 0, emb.std(axis=0), 1.0)
        rows["musicnn-msd embedding (753), raw"] = {k: precision_exact(emb, labels, exclude, k) for k in KS}
        rows["musicnn-msd embedding (753), standardized"] = {
            k: precision_exact(emb_std, labels, exclude, k) for k in KS
        }
    rows["chance"] = {k: p for k in KS}
    return {
        "tracks": n,
        "labels": int(len(set(labels))),
        "label_sizes": {str(a): int(b) for a, b in pd.Series(labels).value_counts().items()},
        "artist_filter": artist_filter,
        "index_version": index.version,
        "rows": {name: {f"p@{k}": round(v, 3) for k, v in r.items()} for name, r in rows.items()},
    }


def print_table(result: dict) -> None:
    ks = [f"p@{k}" for k in KS]
    print(f"{result['tracks']} tracks, {result['labels']} labels, index {result['index_version']}"  # noqa: T201
          f"{', artist-filtered' if result['artist_filter'] else ''}")  # fmt: skip
    print(f"{'space':<46}" + "".join(f"{k:>8}" for k in ks))  # noqa: T201
    for name, row in result["rows"].items():
        print(f"{name:<46}" + "".join(f"{row[k]:>8.3f}" for k in ks))  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n")[0])
    parser.add_argument("--library", help="a folder the demo ran over (demo --music DIR): finds its lake and index")
    parser.add_argument("--lake", help="a lake root (with --index), e.g. .earshot/lake for the synthetic demo")
    parser.add_argument("--index", help="an index root")
    parser.add_argument("--artist-filter", action="store_true", help="leave each query's own artist out")
    args = parser.parse_args(argv)
    if args.library:
        lake, root = library_paths(Path(args.library))
    elif args.lake and args.index:
        lake, root = Path(args.lake), Path(args.index)
    else:
        parser.error("give --library DIR, or --lake and --index")
    if not (lake / "features").exists() or not root.exists():
        sys.stderr.write(f"bench.quality: no lake or index at {lake} / {root}; run "
                         f"./spark-submit.sh demo --music {args.library or 'DIR'} --no-serve first\n")  # fmt: skip
        return 2
    index = Index.open(root)
    frame = read_library(lake, index)
    if len(frame) < 12 or frame["label"].nunique() < 2:
        sys.stderr.write(f"bench.quality: {len(frame)} labelled tracks in {frame['label'].nunique()} labels: too few\n")
        return 2
    result = measure(frame, index, artist_filter=args.artist_filter)
    print_table(result)
    print(json.dumps(result))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
