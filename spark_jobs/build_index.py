"""build-index: fit the normalisation with Spark MLlib, shard by k-means, build Annoy shards on executors.

Reads one feature version from Delta ``features``; assembles the 518 features
plus tempo (tempo is left out when the version has none, as FMA's imported
features); fits ``StandardScaler`` and ``PCA`` (``index.pca_components``, 0 for
none); partitions the catalogue with ``KMeans`` (``index.shards``) so a query
visits only the nearest shards; builds one Annoy index per shard in parallel
with ``applyInPandas``; then writes the transform and manifest and publishes the
version atomically under ``paths.index_root`` (which executors must be able to
write: a local disk in local mode, a shared mount on a cluster). Deterministic
for a seed.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import PCA, StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from conf.errors import JobInputError
from conf.settings import SPACES, Settings, is_uri
from connectors import delta_io
from index import store
from index.build import METRIC, auto_shards, build_shard, group_slices, typical_group_scale
from index.catalogue import COLUMNS as CATALOGUE_COLUMNS
from index.catalogue import write_catalogue
from index.local import write_transform
from index.manifest import Manifest, Shard
from spark_jobs.progress import spark_tasks
from spark_jobs.session import build_spark
from udfs.musicnn import COLUMNS as MUSICNN_COLUMNS
from udfs.schema import FEATURE_COLUMNS

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
    n_shards, n_trees, seed = args.shards or cfg.shards, args.n_trees or cfg.n_trees, cfg.seed
    root = settings.paths.index_root
    if is_uri(root):
        raise JobInputError(f"paths.index_root must be a filesystem path every executor can write, not {root}")
    root_path = Path(root)
    spark = build_spark(settings, app_name="build-index")
    space = args.space or cfg.space
    if space == "auto":
        space = auto_space(spark, settings, version_of_features)
    feats, columns, loc = space_rows(spark, settings, space, version_of_features)
    tracks_loc = settings.lake_table("tracks")
    gone = None
    if delta_io.table_exists(spark, tracks_loc):
        catalogued = delta_io.read_table(spark, tracks_loc)
        if "gone" in catalogued.columns:  # tracks whose files were removed are not served
            gone = catalogued.filter(F.coalesce(F.col("gone"), F.lit(False))).select("track_id")
            feats = feats.join(gone, "track_id", "left_anti")
    feats = feats.select("track_id", *columns).cache()
    n = feats.count()
    if n == 0:
        raise JobInputError(f"no rows of feature version {version_of_features!r} in {loc}")
    log.info("build-index: %d tracks in the %s space (%d columns)", n, space, len(columns))
    n_shards = max(1, min(n_shards or auto_shards(n), n // 2 or 1))

    raw = VectorAssembler(inputCols=columns, outputCol="raw").transform(feats)
    scaler = StandardScaler(inputCol="raw", outputCol="z", withMean=True, withStd=True).fit(raw)
    z = scaler.transform(raw)
    mean = scaler.mean.toArray()
    std = scaler.std.toArray()
    std = np.where(std > 0, std, 1.0)
    k = cfg.pca_components
    if 0 < k < len(columns):
        pca = PCA(k=k, inputCol="z", outputCol="p").fit(z)
        axes = pca.pc.toArray()
        # Same sign convention as index.local.fit_pca: the largest coordinate of each axis positive.
        signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
        axes = axes * np.where(signs == 0, 1, signs)
    else:
        axes = np.eye(len(columns))
    projection = axes
    proj_bc = spark.sparkContext.broadcast(projection)

    @F.pandas_udf("array<float>")
    def project(zs: pd.Series) -> pd.Series:
        m = np.stack(zs.to_numpy()) @ proj_bc.value
        return pd.Series(list(m.astype(np.float32)))

    vectors = z.select("track_id", vector_to_array("z", "float32").alias("z")).withColumn("p", project("z")).cache()
    with_pv = vectors.withColumn("pv", F.expr("transform(p, x -> cast(x as double))"))
    from pyspark.ml.functions import array_to_vector
    from pyspark.ml.stat import Summarizer

    with_pv = with_pv.withColumn("pv", array_to_vector("pv"))
    if n_shards == 1:  # MLlib's KMeans wants k >= 2: one shard is every track around their mean
        centroids = [with_pv.select(Summarizer.mean(F.col("pv")).alias("m")).first()["m"].toArray().tolist()]
        assigned = with_pv.withColumn("shard", F.lit(0)).select("shard", "track_id", "z", "p")
    else:
        kmeans = KMeans(k=n_shards, seed=seed, featuresCol="pv", predictionCol="shard", maxIter=30)
        with spark_tasks(spark, "build-index: k-means", log=log):
            km = kmeans.fit(with_pv)
        centroids = [c.tolist() for c in km.clusterCenters()]
        assigned = km.transform(with_pv).select("shard", "track_id", "z", "p")

    version = args.version or store.new_version_name()
    staging = store.staging_dir(root_path, version)
    staging_str = str(staging)

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

    with spark_tasks(spark, "build-index: shards", log=log):
        built = assigned.groupBy("shard").applyInPandas(build, schema=BUILT_SCHEMA).collect()
    shards = [
        Shard(
            shard=r.shard,
            count=r["count"],
            annoy_file=r.annoy_file,
            ids_file=r.ids_file,
            vectors_file=r.vectors_file,
            points_file=r.points_file,
            centroid=[float(x) for x in centroids[r.shard]],
        )
        for r in sorted(built, key=lambda r: r.shard)
    ]
    sample = np.stack([np.asarray(r.z) for r in vectors.select("z").limit(4000).collect()])
    write_transform(staging, mean, std, projection)
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
        group_scale=typical_group_scale(sample, group_slices(columns), seed=seed),
        probe=cfg.probe,
        exact_tracks=cfg.exact_tracks,
    ).write(staging)
    if delta_io.table_exists(spark, tracks_loc):
        # Every catalogued track that is not gone, with or without features: events for any of them are valid.
        tracks = delta_io.read_table(spark, tracks_loc)
        if gone is not None:
            tracks = tracks.join(gone, "track_id", "left_anti")
        tracks = tracks.select(*CATALOGUE_COLUMNS)
        write_catalogue(staging, tracks.toPandas())
    store.publish(root_path, staging, version, keep=cfg.keep_versions)
    print(  # noqa: T201 - command-line output
        f"build-index: published {version} ({n} tracks in the {space} space, {len(shards)} shards of "
        f"{min(s.count for s in shards)} to {max(s.count for s in shards)} tracks, {projection.shape[1]} dims, "
        f"{n_trees} trees) "
        f"in {time.perf_counter() - started:.1f} s at {root_path / version}"
    )
    return 0
