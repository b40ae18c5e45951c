# ruff: noqa: T201 - a command-line tool: it prints its table
"""Archive benchmark: one stream batch MERGEd into a Delta ``events`` table that has grown for a year.

    python -m bench.archive            # a table of 1,000,000 events (a few minutes)
    python -m bench.archive --full     # 10,000,000 events

The table is written the way the archive grows it: in event-time order (a year
of listening from 20,000 listeners over FMA large's 106,574 tracks), so each
file holds a narrow range of ``ts``. Each round MERGEs one archive batch (1,000
new events of the last minute and 100 retried ones already in the table) with
two conditions, on the same table, alternately:

- baseline: ``event_id`` alone (the archive before this benchmark): Delta must
  read every file to look for matches;
- ours (``spark_jobs.streaming.archive.merge_events``): ``event_id`` and ``ts``,
  plus the batch's ts range on the table's rows, so Delta reads only the files
  whose statistics meet it.

Both must insert exactly the 1,000 new events. Prints a table (median of the
rounds) and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from conf.settings import load_settings
from connectors import delta_io
from spark_jobs.session import build_spark
from spark_jobs.streaming.archive import EVENTS_SCHEMA, merge_events

YEAR_S = 365 * 86400
NEW, RETRIED = 1000, 100


def write_history(spark, location: str, n: int, *, start_s: int) -> None:
    """``n`` events over a year before ``start_s + YEAR_S``, written in time order (about 50,000 a file)."""
    from pyspark.sql import functions as F

    step = YEAR_S / n
    rows = spark.range(n).select(
        F.substring(F.sha2(F.col("id").cast("string"), 256), 1, 32).alias("event_id"),
        F.concat(F.lit("u"), (F.col("id") % 20000).cast("string")).alias("user_id"),
        (F.col("id") * 7919 % 106574 + 1).alias("track_id"),
        F.element_at(
            F.array(*map(F.lit, ("play", "complete", "skip", "like", "dislike"))), (F.col("id") % 5 + 1).cast("int")
        ).alias("type"),
        F.timestamp_seconds(F.lit(start_s) + F.col("id") * F.lit(step)).alias("ts"),
        (F.col("id") % 240000).alias("position_ms"),
        F.lit(None).cast("string").alias("session_id"),
        F.lit("bench").alias("client"),
        F.lit(None).cast("string").alias("shared"),
        F.lit(None).cast("string").alias("context"),
        F.lit("Rock").alias("genre"),
        (F.col("id") % 4).cast("int").alias("kafka_partition"),
        F.col("id").alias("kafka_offset"),
        (F.col("id") / 1000).cast("long").alias("batch_id"),
    )
    rows = rows.select([F.col(f.name).cast(f.dataType) for f in EVENTS_SCHEMA.fields])
    rows.repartitionByRange(max(1, n // 50_000), "ts").sortWithinPartitions("ts").write.format("delta").save(location)


def batch(spark, location: str, round_: int, *, end_s: int):
    """An archive batch: NEW events of the year's last minute, and RETRIED copies of events the table holds."""
    from pyspark.sql import functions as F

    fresh = spark.range(NEW).select(
        F.concat(F.lit(f"new-{round_}-"), F.col("id").cast("string")).alias("event_id"),
        F.lit("u1").alias("user_id"),
        (F.col("id") + 1).alias("track_id"),
        F.lit("play").alias("type"),
        F.timestamp_seconds(F.lit(end_s - 60) + F.col("id") * F.lit(0.06)).alias("ts"),
    )
    for f in EVENTS_SCHEMA.fields:
        if f.name not in fresh.columns:
            fresh = fresh.withColumn(f.name, F.lit(None).cast(f.dataType))
    fresh = fresh.select([F.col(f.name).cast(f.dataType) for f in EVENTS_SCHEMA.fields])
    retried = delta_io.read_table(spark, location).orderBy(F.col("ts").desc()).limit(RETRIED)
    return fresh.unionByName(retried).localCheckpoint(eager=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="10,000,000 events (default 1,000,000)")
    parser.add_argument("--events", type=int, help="table size (overrides --full)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    n = args.events or (10_000_000 if args.full else 1_000_000)
    settings = load_settings()
    spark = build_spark(settings, app_name="bench-archive", master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="earshot-bench-archive-"))
    location = str(work / "events")
    end_s = 1_796_000_000
    try:
        started = time.monotonic()
        write_history(spark, location, n, start_s=end_s - YEAR_S)
        write_s = time.monotonic() - started
        files = len(list(Path(location).glob("*.parquet")))
        times: dict[str, list[float]] = {"baseline": [], "ours": []}
        for r in range(args.rounds):
            for name in ("baseline", "ours"):
                rows = batch(spark, location, r * 2 + (name == "ours"), end_s=end_s)
                started = time.monotonic()
                if name == "baseline":
                    inserted = delta_io.merge_upsert(spark, rows, location, keys=["event_id"], update=False)
                else:
                    inserted = merge_events(spark, rows, location)
                times[name].append(time.monotonic() - started)
                assert inserted == NEW, f"{name} inserted {inserted}, not {NEW}"
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    base, ours = statistics.median(times["baseline"]), statistics.median(times["ours"])
    print(f"\nArchive MERGE of one batch ({NEW:,} new + {RETRIED} retried events) into {n:,} events "
          f"({files} files, written in {write_s:.0f} s); median of {args.rounds} rounds")  # fmt: skip
    print(f"{'condition':<44}{'seconds':>10}")
    print(f"{'baseline: event_id alone':<44}{base:>10.2f}")
    print(f"{'ours: event_id, ts and the batch ts range':<44}{ours:>10.2f}")
    print(f"speed-up {base / ours:.1f}x\n")
    print(json.dumps({"events": n, "files": files, "batch": NEW + RETRIED, "baseline_s": round(base, 3),
                      "ours_s": round(ours, 3), "speedup": round(base / ours, 2),
                      "rounds": {k: [round(t, 3) for t in v] for k, v in times.items()}}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
