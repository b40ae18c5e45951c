"""import-fma-features: FMA's own features.csv into the ``features`` table, without any audio.

FMA publishes the same 518 statistics for all 106,574 tracks of fma_large
(``fma_metadata/features.csv``, three column levels). Because our schema uses
FMA's names, the import is a rename: the tracks can then be indexed without
the 93 GiB of audio. Rows get their own feature version (default
``fma-csv``): FMA computed them at 44.1 kHz, ours default to 22.05 kHz.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf.errors import JobInputError
from conf.settings import Settings, join_uri, path_argument
from connectors import delta_io, mongo_io
from connectors.fma import FmaFormatError, load_features_csv
from connectors.services import require_mongo
from spark_jobs.extract_chunk import mongo_features
from spark_jobs.session import build_spark
from udfs.schema import FEATURE_COLUMNS

log = logging.getLogger("earshot.import_fma_features")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--features-csv", type=path_argument, help="default: <library_root>/fma_metadata/features.csv")
    parser.add_argument("--feature-version", default="fma-csv")
    parser.add_argument("--no-mongo", action="store_true", help="write Delta only")


def main(settings: Settings, args: argparse.Namespace) -> int:
    path = args.features_csv or join_uri(settings.paths.library_root, "fma_metadata/features.csv")
    if not args.no_mongo:
        require_mongo(settings)
    try:
        frame = load_features_csv(Path(path), FEATURE_COLUMNS)
    except (FmaFormatError, FileNotFoundError) as exc:
        raise JobInputError(str(exc)) from None
    finite = frame.notna().all(axis=1)
    if not finite.all():
        log.warning("skipping %d rows with missing values", int((~finite).sum()))
        frame = frame[finite]
    frame = frame.reset_index()
    spark = build_spark(settings, app_name="import-fma-features")
    rows = feature_rows(spark, frame, str(path), args.feature_version)
    delta_io.merge_upsert(spark, rows, settings.lake_table("features"), keys=["track_id", "feature_version"])
    if not args.no_mongo:
        write_mongo(settings, frame, args.feature_version)
    print(f"import-fma-features: {len(frame)} tracks imported as feature version {args.feature_version!r}")  # noqa: T201
    return 0


def feature_rows(spark, frame, path: str, version: str):
    """Delta ``features`` rows of FMA's table: extract's columns, with what FMA does not say left null."""
    schema = T.StructType(
        [T.StructField("track_id", T.LongType(), False)] + [T.StructField(c, T.DoubleType()) for c in FEATURE_COLUMNS]
    )
    return (
        spark.createDataFrame(frame, schema=schema)
        .withColumn("feature_version", F.lit(version))
        .withColumn("tempo", F.lit(None).cast("double"))
        .withColumn("source_path", F.lit(path))
        .withColumn("source_size", F.lit(None).cast("long"))
        .withColumn("source_mtime", F.lit(None).cast("timestamp"))
        .withColumn("source_rate", F.lit(44100))
        .withColumn("channels", F.lit(None).cast("int"))
        .withColumn("clip_s", F.lit(30.0))
        .withColumn("extracted_at", F.current_timestamp())
        .select("track_id", "feature_version", *FEATURE_COLUMNS, "tempo", "source_path", "source_size", "source_mtime",
                "source_rate", "channels", "clip_s", "extracted_at")  # fmt: skip
    )


def write_mongo(settings: Settings, frame, version: str) -> None:
    """Same subdocument shape as extract's (the vector as a float32 blob), under its own field (``features_fma``)
    so that it never overwrites features extracted from audio."""
    from bson.binary import Binary

    with mongo_io.connect(settings) as client:
        db = mongo_io.database(client, settings)
        batch = []
        for rec in frame.to_dict("records"):
            rec["tempo"] = None
            doc = mongo_features(rec, version=version, binary=Binary)
            batch.append({"_id": int(rec["track_id"]), "features_fma": doc})
            if len(batch) == 1000:
                mongo_io.set_fields_many(db, "tracks", batch)
                batch = []
        mongo_io.set_fields_many(db, "tracks", batch)
