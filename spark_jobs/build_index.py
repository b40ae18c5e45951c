"""build-index: fit the index space over Spark partitions, shard by k-means, build Annoy shards on executors.

Reads one feature version from Delta ``features`` (the 518 features plus tempo; tempo is left out
when the version has none, as FMA's imported features) or the musicnn embeddings. The fitting is
``index.fit``'s, the same code as the plain-Python build (``index.local``): the raw rows' moments
summed over partitions give the scaler and the PCA (``index.pca_components``, 0 for none); every
track's standardized vector and point are computed on executors; k-means over a sample of the
points (collected to the driver by track id: at most ``index.fit.KMEANS_SAMPLE``) gives the shard
centroids (``index.shards``) and each track goes to its nearest one, so a query visits only the
nearest shards; one Annoy index per shard is built in parallel with ``applyInPandas``; then the
transform and manifest are written and the version published atomically under
``paths.index_root`` (which executors must be able to write: a local disk in local mode, a shared
mount on a cluster). Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from conf.errors import JobInputError
from conf.settings import SPACES, Settings, is_uri
from connectors import delta_io
from index import fit, store
from index.build import METRIC, build_shard, shard_count
from index.catalogue import COLUMNS as CATALOGUE_COLUMNS
from index.catalogue import write_catalogue
from index.groups import group_slices, typical_group_scale
from index.manifest import Manifest, Shard
from spark_jobs.progress import spark_tasks
from spark_jobs.session import build_spark
from udfs.schema import FEATURE_COLUMNS, MUSICNN_COLUMNS

log = logging.getLogger("earshot.build_index")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feature-version", help="default: extract.feature_version")
    parser.add_argument("--shards", type=int, help="default: index.shards")
    parser.add_argument("--n-trees", type=int, help="default: index.n_trees")
    parser.add_argument("--version", help="name of the new version (default: a UTC timestamp)")
    parser.add_argument("--space", choices=SPACES, help="default: index.space")


BUILT_SCHEMA = "shard int, count long, annoy_file string, ids_file string, vectors_file string, points_file string"


def auto_space(spark, settings: Settings, version_of_features: str) -> str:
    """musicnn-msd when every track with features of this version has an embedding (audio extracted with
    ``extract.embedding`` on), else features (FMA's imported features.csv has no audio to embed)."""
    feats_loc, emb_loc = settings.lake_table("features"), settings.lake_table("embeddings")
    if not (delta_io.table_exists(spark, emb_loc) and delta_io.table_exists(spark, feats_loc)):
        return "features"
    of = F.col("feature_version") == version_of_features
    with_features = delta_io.read_table(spark, feats_loc).filter(of).select("track_id")
    embedded = delta_io.read_table(spark, emb_loc).filter(of & (F.col("model") == "musicnn-msd")).select("track_id")
    if with_features.limit(1).count() == 0 or embedded.limit(1).count() == 0:
        return "features"
    missing = with_features.join(embedded, "track_id", "left_anti").limit(1).count()
    if missing:
        log.warning("build-index: some tracks of %s have no embedding yet; serving the features space "
                    "(run extract to embed them)", version_of_features)  # fmt: skip
        return "features"
    return "musicnn-msd"


def space_rows(spark, settings: Settings, space: str, version_of_features: str):
    """(track_id + raw columns, the column names, the table read) of one index space.

    ``features``: the 518 FMA features plus tempo (left out when the version has none, as
    FMA's imported features). ``musicnn-msd``: the 753 numbers of each track's embedding
    (Delta ``embeddings``, written by ``extract`` with ``extract.embedding: musicnn-msd``).
    """
    if space == "features":
        loc = settings.lake_table("features")
        if not delta_io.table_exists(spark, loc):
            raise JobInputError(f"no features at {loc}; run ./spark-submit.sh extract (or import-fma-features) first")
        feats = delta_io.read_table(spark, loc).filter(F.col("feature_version") == version_of_features)
        has_tempo = feats.filter(F.col("tempo").isNull()).limit(1).count() == 0
        return feats, list(FEATURE_COLUMNS) + (["tempo"] if has_tempo else []), loc
    loc = settings.lake_table("embeddings")
    if not delta_io.table_exists(spark, loc):
        raise JobInputError(
            f"index.space is {space} but there are no embeddings at {loc}: run ./spark-submit.sh extract with "
            f"extract.embedding: {space} (extract --retry-errors is not needed; tracks without one are analysed again)"
        )
    rows = delta_io.read_table(spark, loc).filter(
        (F.col("feature_version") == version_of_features) & (F.col("model") == space)
    )
    columns = list(MUSICNN_COLUMNS)
    vector = F.col("vector")
    return rows.select("track_id", *[vector[i].cast("double").alias(c) for i, c in enumerate(columns)]), columns, loc


def main(settings: Settings, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cfg = settings.index
    version_of_features = args.feature_version or settings.extract.feature_version
    n_trees, seed = args.n_trees or cfg.n_trees, cfg.seed
    if is_uri(settings.paths.index_root):
        raise JobInputError(
            f"paths.index_root must be a filesystem path every executor can write, not {settings.paths.index_root}"
        )
    root_path = Path(settings.paths.index_root)
    spark = build_spark(settings, app_name="build-index")
    space = args.space or cfg.space
    if space == "auto":
        space = auto_space(spark, settings, version_of_features)
    feats, columns, gone = catalogue_rows(spark, settings, space, version_of_features)
    n = feats.count()
    log.info("build-index: %d tracks in the %s space (%d columns)", n, space, len(columns))
    mean, std, projection = fit_transform(feats, columns, cfg.pca_components)
    points = with_points(spark, feats, columns, (mean, std, projection)).cache()
    ids = np.asarray([r.track_id for r in points.select("track_id").collect()], np.int64)
    sample = collect_sample(spark, points, fit.sample_ids(ids, fit.KMEANS_SAMPLE, seed=seed), "p")
    centroids = fit.fit_centroids(sample, shard_count(args.shards or cfg.shards, n), seed=seed)
    version = args.version or store.new_version_name()
    staging = store.staging_dir(root_path, version)
    with spark_tasks(spark, "build-index: shards", log=log):
        shards = build_shards(spark, points, centroids, staging, n_trees=n_trees, seed=seed)
    scale_sample = collect_sample(spark, points, fit.sample_ids(ids, fit.GROUP_SAMPLE, seed=seed), "z")
    fit.write_transform(staging, mean, std, projection)
    Manifest(
        version=version,
        feature_version=version_of_features,
        columns=columns,
        dims=int(projection.shape[1]),
        metric=METRIC,
        n_trees=n_trees,
        search_k=cfg.search_k,
        seed=seed,
        shards=shards,
        created_at=datetime.now(UTC).isoformat(),
        group_scale=typical_group_scale(scale_sample, group_slices(columns), seed=seed),
        probe=cfg.probe,
        exact_tracks=cfg.exact_tracks,
    ).write(staging)
    publish_catalogue(spark, settings, staging, gone)
    store.publish(root_path, staging, version, keep=cfg.keep_versions)
    print(  # noqa: T201 - command-line output
        f"build-index: published {version} ({n} tracks in the {space} space, {len(shards)} shards of "
        f"{min(s.count for s in shards)} to {max(s.count for s in shards)} tracks, {projection.shape[1]} dims, "
        f"{n_trees} trees) in {time.perf_counter() - started:.1f} s at {root_path / version}"
    )
    return 0


def catalogue_rows(spark, settings: Settings, space: str, version_of_features: str):
    """(track_id + raw columns of every track not gone, cached and non-empty; the columns; the gone tracks)."""
    feats, columns, loc = space_rows(spark, settings, space, version_of_features)
    tracks_loc = settings.lake_table("tracks")
    gone = None
    if delta_io.table_exists(spark, tracks_loc):
        catalogued = delta_io.read_table(spark, tracks_loc)
        if "gone" in catalogued.columns:  # tracks whose files were removed are not served
            gone = catalogued.filter(F.coalesce(F.col("gone"), F.lit(False))).select("track_id")
            feats = feats.join(gone, "track_id", "left_anti")
    feats = feats.select("track_id", *[F.col(c).cast("double").alias(c) for c in columns]).cache()
    if feats.limit(1).count() == 0:
        raise JobInputError(f"no rows of feature version {version_of_features!r} in {loc}")
    return feats, columns, gone


def fit_transform(feats: DataFrame, columns: list[str], components: int):
    """(mean, std, projection): :mod:`index.fit` on the moments summed over the partitions (two passes)."""
    centre = np.asarray(feats.select(*[F.avg(c) for c in columns]).first(), np.float64)

    def partial(batches):
        total = None
        for pdf in batches:
            part = fit.Moments.of(pdf[columns].to_numpy(np.float64), centre)
            total = part if total is None else total + part
        if total is not None:
            yield pd.DataFrame({"n": [total.count], "total": [total.total.tobytes()], "gram": [total.gram.tobytes()]})

    width = len(columns)
    parts = feats.select(*columns).mapInPandas(partial, "n long, total binary, gram binary").collect()
    moments = sum(
        (fit.Moments(r.n, np.frombuffer(r.total), np.frombuffer(r.gram).reshape(width, width)) for r in parts[1:]),
        fit.Moments(parts[0].n, np.frombuffer(parts[0].total), np.frombuffer(parts[0].gram).reshape(width, width)),
    )
    mean, std = fit.fit_scaler(moments, centre)
    return mean, std, fit.fit_pca(moments, std, components)


def with_points(spark, feats: DataFrame, columns: list[str], fitted) -> DataFrame:
    """track_id, z (standardized) and p (the point) of every track, by :func:`index.fit.transform` on executors."""
    fitted_bc = spark.sparkContext.broadcast(fitted)

    def points(batches):
        for pdf in batches:
            z, p = fit.transform(pdf[columns].to_numpy(np.float64), *fitted_bc.value)
            yield pd.DataFrame({"track_id": pdf["track_id"].to_numpy(), "z": list(z), "p": list(p)})

    return feats.mapInPandas(points, "track_id long, z array<float>, p array<float>")


def collect_sample(spark, points: DataFrame, ids: np.ndarray, column: str) -> np.ndarray:
    """The ``column`` vectors of the tracks ``ids``, in track-id order, on the driver."""
    chosen = spark.createDataFrame(pd.DataFrame({"track_id": ids}))
    rows = points.join(F.broadcast(chosen), "track_id").select("track_id", column).toPandas()
    rows = rows.sort_values("track_id", kind="stable")
    return np.stack(rows[column].to_numpy()).astype(np.float32)


def build_shards(spark, points: DataFrame, centroids: np.ndarray, staging: Path, *, n_trees: int, seed: int):
    """Each track to its nearest centroid's shard, and every shard built on an executor: the manifest's rows."""
    centroids_bc = spark.sparkContext.broadcast(np.asarray(centroids, np.float64))
    staging_str = str(staging)

    def label(batches):
        for pdf in batches:
            p = np.stack(pdf["p"].to_numpy()) if len(pdf) else np.empty((0, centroids_bc.value.shape[1]))
            yield pdf.assign(shard=fit.nearest_centroid(p, centroids_bc.value).astype(np.int32))

    def build(pdf: pd.DataFrame) -> pd.DataFrame:
        shard = int(pdf["shard"].iloc[0])
        files = build_shard(
            Path(staging_str),
            shard,
            ids=pdf["track_id"].to_numpy(dtype=np.int64),
            projected=np.stack(pdf["p"].to_numpy()).astype(np.float32),
            standardized=np.stack(pdf["z"].to_numpy()).astype(np.float32),
            n_trees=n_trees,
            seed=seed,
        )
        return pd.DataFrame([{"shard": shard, "count": len(pdf), **files}])

    labelled = points.mapInPandas(label, "track_id long, z array<float>, p array<float>, shard int")
    built = labelled.groupBy("shard").applyInPandas(build, schema=BUILT_SCHEMA).collect()
    return [
        Shard(shard=r.shard, count=r["count"], annoy_file=r.annoy_file, ids_file=r.ids_file,
              vectors_file=r.vectors_file, points_file=r.points_file,
              centroid=[float(x) for x in centroids[r.shard]])  # fmt: skip
        for r in sorted(built, key=lambda r: r.shard)
    ]


def publish_catalogue(spark, settings: Settings, staging: Path, gone) -> None:
    """Every catalogued track that is not gone, with or without features: events for any of them are valid."""
    tracks_loc = settings.lake_table("tracks")
    if delta_io.table_exists(spark, tracks_loc):
        tracks = delta_io.read_table(spark, tracks_loc)
        if gone is not None:
            tracks = tracks.join(gone, "track_id", "left_anti")
        write_catalogue(staging, tracks.select(*CATALOGUE_COLUMNS).toPandas())
