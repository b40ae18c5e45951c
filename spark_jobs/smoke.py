"""Smoke job: proves the wiring end to end against the configured services.

Writes and reads back a Delta table, writes a message to Kafka with the Spark
connector and reads it back with a Structured Streaming query, and upserts and
reads back a MongoDB document. Exits 0 only when all three round-trip.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
import uuid
from datetime import UTC, datetime

from pyspark.sql import functions as F

from conf.errors import EarshotError
from conf.settings import Settings, is_uri
from connectors import delta_io, kafka_io, mongo_io
from connectors.services import require_kafka, require_mongo
from spark_jobs.session import build_spark

log = logging.getLogger("earshot.smoke")
SMOKE_TOPIC = "earshot.smoke"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=100, help="rows in the Delta round trip")


def main(settings: Settings, args: argparse.Namespace) -> int:
    require_kafka(settings)
    require_mongo(settings)
    token = uuid.uuid4().hex
    spark = build_spark(settings, app_name="smoke")
    results: list[tuple[str, str, float]] = []

    started = time.perf_counter()
    location = settings.lake_table("_smoke")
    df = spark.range(args.rows).withColumn("token", F.lit(token))
    delta_io.write_table(df, location)
    back = delta_io.read_table(spark, location)
    got = back.filter(F.col("token") == token).count()
    if got != args.rows:
        raise EarshotError(f"Delta round trip at {location}: wrote {args.rows} rows, read {got}")
    results.append(("delta", f"{got} rows at {location}", time.perf_counter() - started))

    started = time.perf_counter()
    kafka_io.ensure_topic(settings, SMOKE_TOPIC, partitions=1)
    message = spark.createDataFrame([(token, f"smoke {token}")], "key string, value string")
    kafka_io.write_batch(message, settings, topic=SMOKE_TOPIC)
    checkpoint = settings.checkpoint(f"_smoke-{token}")
    stream = kafka_io.read_stream(spark, settings, topic=SMOKE_TOPIC).select(
        F.col("key").cast("string").alias("key"), F.col("value").cast("string").alias("value")
    )
    query = (
        stream.writeStream.format("memory")
        .queryName(f"smoke_{token}")
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    try:
        query.awaitTermination(120)
        seen = spark.sql(f"SELECT value FROM smoke_{token} WHERE key = '{token}'").collect()
    finally:
        query.stop()
        if not is_uri(checkpoint):
            shutil.rmtree(checkpoint, ignore_errors=True)
    if [r.value for r in seen] != [f"smoke {token}"]:
        raise EarshotError(f"Kafka round trip on topic {SMOKE_TOPIC}: expected 1 message, saw {len(seen)}")
    results.append(("kafka", f"1 message via Structured Streaming on {SMOKE_TOPIC}", time.perf_counter() - started))

    started = time.perf_counter()
    with mongo_io.connect(settings) as client:
        db = mongo_io.database(client, settings)
        mongo_io.upsert_many(db, "smoke", [{"_id": "smoke", "token": token, "at": datetime.now(UTC)}])
        doc = db["smoke"].find_one({"_id": "smoke"})
    if not doc or doc.get("token") != token:
        raise EarshotError(f"MongoDB round trip in {settings.mongo.database}.smoke: document not read back")
    results.append(("mongodb", f"upserted and read {settings.mongo.database}.smoke", time.perf_counter() - started))

    print("smoke: all wiring works")  # noqa: T201 - command-line output
    for name, what, seconds in results:
        print(f"  {name:<8} ok  {seconds:6.2f} s  {what}")  # noqa: T201
    return 0
