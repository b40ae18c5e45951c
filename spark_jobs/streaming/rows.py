"""The stateful step's output, pure: the rows its sinks get (dead letters, one summary per bucket call) and a
listener's ``recommendations`` document."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from pyspark.sql import types as T

from connectors.mongo_io import safe_key
from index.reader import Index
from recommend.fold import Folded
from recommend.items import Recommendation

OUTPUT_SCHEMA = T.StructType(
    [
        T.StructField("kind", T.StringType()),  # dlq | bucket
        T.StructField("user_id", T.StringType()),
        T.StructField("stats", T.StringType()),  # bucket: bucket_summary and each stage's cost (JSON)
        T.StructField("reason", T.StringType()),
        T.StructField("raw", T.BinaryType()),
        T.StructField("kafka_partition", T.IntegerType()),
        T.StructField("kafka_offset", T.LongType()),
        T.StructField("kafka_ts_ms", T.LongType()),
    ]
)
OUTPUT_COLUMNS = [f.name for f in OUTPUT_SCHEMA.fields]
# Explicit pandas dtypes: an all-missing column must still convert to its Arrow type.
OUTPUT_DTYPES = {
    f.name: {T.LongType(): "Int64", T.IntegerType(): "Int32"}.get(f.dataType, "object") for f in OUTPUT_SCHEMA.fields
}


def listener_document(folded: Folded, rec: Recommendation, index: Index) -> dict:
    """A listener's Mongo ``recommendations`` document body: items, trigger, and the profile."""
    taste = folded.taste
    assert taste is not None
    last = folded.trigger()
    profile = taste.profile()
    return {
        "items": rec.columns,
        "source": rec.source,
        "index_version": index.version,
        "trigger_event_id": last["event_id"],
        "trigger_type": last["type"],
        "trigger_track_id": last["track_id"],
        "trigger_event_ms": last["ts_ms"],
        "events_in_batch": len(folded.applied),
        "events_total": taste.events,
        "profile": {
            **{k: v for k, v in profile.items() if k not in ("genre_score", "skips_by_genre")},
            # Genre names come from the catalogue's tags: escaped, so any name is a valid field name.
            "skips_by_genre": {safe_key(g): n for g, n in profile["skips_by_genre"].items()},
        },
    }


def bucket_summary(folded: list[Folded], written_ms: Mapping[str, float]) -> dict:
    """What one bucket call did, for the batch's metrics: events applied, duplicates dropped, listeners whose
    document was written, and each applied event's latency (its document's write less its event time, ms).

    One summary per call instead of a row per listener: the batch's output to the driver stays a few rows
    however many listeners it touched.
    """
    latencies: list[float] = []
    users = 0
    for f in folded:
        written = written_ms.get(f.user_id) if f.changed else None
        if written is None:
            continue
        users += 1
        latencies.extend(round(written - a["ts_ms"], 1) for a in f.applied)
    return {
        "applied": sum(len(f.applied) for f in folded),
        "duplicates": sum(f.duplicates for f in folded),
        "users": users,
        "latency_ms": latencies,
    }


def output_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.array([r.get(c) for r in rows], dtype=OUTPUT_DTYPES[c]) for c in OUTPUT_COLUMNS})


def dead_rows(dead: list[dict]) -> list[dict]:
    return [{"kind": "dlq", "user_id": d.pop("user_key"), **d} for d in dead]
