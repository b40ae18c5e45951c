"""The jobs' pure DataFrame steps on tiny inline frames, each compared whole with what it must give.

The ETL tests (``test_etl.py``) run the jobs end to end on a planted library; these pin each step's
rows and columns on a handful of hand-written rows, with the session every Spark test shares
(``tests/conftest.py``'s ``spark``): ingest's change hash, extract's "no outcome yet" and its output
rows, build-index's fit and points (``index.fit``'s numbers, computed over partitions).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from pyspark.sql import Row
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from index import fit
from spark_jobs import build_index, extract, extract_chunk, ingest
from spark_jobs.session import session_settings
from udfs.schema import FEATURE_COLUMNS, N_FEATURES

pytestmark = pytest.mark.spark


def test_the_content_hash_is_a_hash_of_every_field_but_the_id(spark):
    schema = "track_id long, title string, artist string"
    rows = spark.createDataFrame([(1, "Song", "Artist"), (2, "Other", None)], schema)

    def expected(**fields) -> str:  # Spark's to_json of the fields in name order (a null field is left out)
        text = json.dumps({k: fields[k] for k in sorted(fields) if fields[k] is not None}, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    assertDataFrameEqual(
        ingest.with_content_hash(rows),
        [
            Row(track_id=1, title="Song", artist="Artist", content_hash=expected(title="Song", artist="Artist")),
            Row(track_id=2, title="Other", artist=None, content_hash=expected(title="Other", artist=None)),
        ],
    )
    swapped = rows.select("track_id", "artist", "title")  # column order does not change the hash
    assert ingest.with_content_hash(swapped).select("content_hash").collect() == (
        ingest.with_content_hash(rows).select("content_hash").collect()
    )


def test_without_outcome_keeps_the_rows_whose_fingerprint_has_none_null_safe(spark):
    schema = "track_id long, source_size long, source_mtime double, path string"
    rows = spark.createDataFrame(
        [(1, 100, 1.0, "a"), (2, 200, 2.0, "b"), (3, None, None, "gone"), (4, 400, 4.0, "changed")], schema
    )
    done = spark.createDataFrame([(1, 100, 1.0), (3, None, None), (4, 400, 3.0)], ", ".join(schema.split(", ")[:3]))
    assertDataFrameEqual(
        extract.without_outcome(rows, done),
        [Row(track_id=2, source_size=200, source_mtime=2.0, path="b"),
         Row(track_id=4, source_size=400, source_mtime=4.0, path="changed")],  # fmt: skip
    )


def analysed(spark):
    """Two tracks as the extract UDF hands them over: one analysed, one broken."""
    schema = T.StructType(
        [
            T.StructField("track_id", T.LongType()),
            T.StructField("feature_version", T.StringType()),
            T.StructField("audio_path", T.StringType()),
            T.StructField("source_size", T.LongType()),
            T.StructField("source_mtime", T.DoubleType()),
            T.StructField("values", T.ArrayType(T.FloatType())),
            T.StructField("tempo", T.FloatType()),
            T.StructField("source_rate", T.IntegerType()),
            T.StructField("channels", T.IntegerType()),
            T.StructField("clip_s", T.FloatType()),
            T.StructField("embedding", T.ArrayType(T.FloatType())),
            T.StructField("error", T.StringType()),
        ]
    )
    good = (7, "v1", "/m/7.flac", 10, 1.5, [float(i) for i in range(N_FEATURES)], 120.0, 44100, 2, 30.0, [0.5, 0.25],
            None)  # fmt: skip
    broken = (8, "v1", "/m/8.mp3", 0, 2.5, None, None, None, None, None, None, "empty file (0 bytes)")
    return spark.createDataFrame([good, broken], schema)


def test_extract_writes_features_of_the_analysed_and_errors_of_the_broken(spark):
    frame = analysed(spark)
    features = extract_chunk.feature_rows(frame).drop("extracted_at")
    want = {"track_id": 7, "feature_version": "v1", **{c: float(i) for i, c in enumerate(FEATURE_COLUMNS)},
            "tempo": 120.0, "source_path": "/m/7.flac", "source_size": 10, "source_mtime": 1.5,
            "source_rate": 44100, "channels": 2, "clip_s": 30.0}  # fmt: skip
    assert features.columns == list(want)
    assertDataFrameEqual(features, [Row(**want)])
    assertDataFrameEqual(
        extract_chunk.error_rows(frame).drop("failed_at"),
        [Row(track_id=8, feature_version="v1", path="/m/8.mp3", reason="empty file (0 bytes)", source_size=0,
             source_mtime=2.5)],  # fmt: skip
    )
    assertDataFrameEqual(
        extract_chunk.embedding_rows(frame, "musicnn-msd").drop("extracted_at"),
        [Row(track_id=7, feature_version="v1", model="musicnn-msd", vector=[0.5, 0.25], source_size=10,
             source_mtime=1.5)],  # fmt: skip
    )


def test_extract_reads_a_chunk_in_partitions_of_equal_file_counts_and_puts_the_settings_back(spark, tmp_path):
    """Files of 8 MB and of 1 KB alike: 10 of them in 5 scan partitions of 2, the audio never shuffled."""
    sizes = [8 << 20, 1024, 1024, 3 << 20, 1024, 1024, 5 << 20, 1024, 1024, 1024]
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"{i}.mp3"
        path.write_bytes(b"\0" * size)
        paths.append(str(path))
    key = "spark.sql.files.maxPartitionBytes"
    before = spark.conf.get(key)
    with extract_chunk.file_count_partitions(spark, files=len(paths), parts=5):
        audio = spark.read.format("binaryFile").load(paths)
        counts = audio.rdd.glom().map(len).collect()
    assert sorted(counts) == [2] * 5
    assert spark.conf.get(key) == before and spark.conf.get("spark.sql.files.openCostInBytes") != str(
        extract_chunk.OPEN_COST
    )
    with extract_chunk.file_count_partitions(spark, files=7, parts=3):  # 3, 3 and 1: never more than parts
        counts = spark.read.format("binaryFile").load(paths[:7]).rdd.glom().map(len).collect()
    assert sorted(counts) == [1, 3, 3]


def test_a_jobs_session_settings_hold_inside_and_are_put_back_after_even_on_failure(spark):
    """extract's tuning (8 tracks per Arrow batch) must not reach a pipeline's later steps."""
    unset, kept = "spark.sql.execution.arrow.maxRecordsPerBatch", "spark.sql.shuffle.partitions"
    before = spark.conf.get(kept)
    spark.conf.unset(unset)
    default = spark.conf.get(unset)
    with pytest.raises(RuntimeError), session_settings(spark, {unset: "8", kept: "7"}):
        assert (spark.conf.get(unset), spark.conf.get(kept)) == ("8", "7")
        raise RuntimeError("a failed chunk")
    assert (spark.conf.get(unset), spark.conf.get(kept)) == (default, before)


def test_build_index_fits_over_partitions_what_index_fit_fits_in_one_go(spark):
    rng = np.random.default_rng(5)
    raw = rng.normal(loc=[0, 100, -3, 7, 2000], scale=[1, 20, 0.1, 3, 500], size=(60, 5))
    columns = [f"c{i}" for i in range(5)]
    ids = np.arange(1, 61, dtype=np.int64)
    rows = [(int(t), *map(float, r)) for t, r in zip(ids, raw, strict=True)]
    feats = spark.createDataFrame(rows, ["track_id", *columns]).repartition(4)  # moments summed over 4 partitions
    mean, std, projection = build_index.fit_transform(feats, columns, 3)
    centre = raw.mean(axis=0)
    moments = fit.Moments.of(raw, centre)
    want_mean, want_std = fit.fit_scaler(moments, centre)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-12)
    np.testing.assert_allclose(std, want_std, rtol=1e-9)
    np.testing.assert_allclose(projection, fit.fit_pca(moments, want_std, 3), atol=1e-9)
    z, p = fit.transform(raw, mean, std, projection)
    points = build_index.with_points(spark, feats, columns, (mean, std, projection))
    assertDataFrameEqual(
        points,
        [Row(track_id=int(t), z=a.tolist(), p=b.tolist()) for t, a, b in zip(ids, z, p, strict=True)],
        rtol=1e-6,
    )


def test_spark_sends_the_balanced_bucket_keys_evenly_to_the_stateful_tasks(spark):
    """The stateful step's shuffle (hash partitioning on the bucket key) gives each of two tasks 8 of the 16
    buckets' listeners' keys: Spark's own partitioner, not our copy of its hash."""
    from pyspark.sql import functions as F

    from spark_jobs.streaming.layout import bucket_keys
    from spark_jobs.streaming.source import bucket_of

    users = spark.range(4000).select(F.concat(F.lit("listener-"), F.col("id").cast("string")).alias("user"))
    keys = users.select(bucket_of("user", bucket_keys(16)).alias("bucket"))
    per_task = keys.repartition(2, "bucket").groupBy(F.spark_partition_id().alias("task")).agg(
        F.countDistinct("bucket").alias("buckets")
    )
    assert sorted(r["buckets"] for r in per_task.collect()) == [8, 8]
    identity = users.select(bucket_of("user", list(range(16))).alias("bucket"))
    assert {r["bucket"] for r in identity.distinct().collect()} == set(range(16)), "a v1 checkpoint's keys"
