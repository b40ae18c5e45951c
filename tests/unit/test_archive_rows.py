"""The events archive's rows: every contract field a column, each convertible to the Spark schema's Arrow type."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql.pandas.types import to_arrow_type

from events.producer import new_event
from index.local import build_version
from index.synthetic import COLUMNS, synthetic_catalogue
from spark_jobs.streaming.archive import ARCHIVE_ROW_SCHEMA, archive_rows

pytestmark = pytest.mark.unit


def archived(root: Path, events: list[dict]) -> pd.DataFrame:
    pdf = pd.DataFrame(
        {
            "value": [json.dumps(e).encode() for e in events],
            "kafka_partition": [0] * len(events),
            "kafka_offset": list(range(len(events))),
        }
    )
    return next(archive_rows(str(root), 300.0, 30 * 86400.0)(iter([pdf])))


def test_a_batch_where_no_event_has_an_optional_field_still_converts_for_spark(tmp_path):
    ids, raw, frame = synthetic_catalogue(per_genre=10, artists_per_genre=2)
    build_version(tmp_path, ids, raw, COLUMNS, feature_version="t", catalogue=frame, shards=1)
    batches = [
        [new_event(user_id="a", track_id=3, type="like")],  # no optional field at all
        [new_event(user_id="a", track_id=3, type="share", shared="playlist:x", context="for-you", position_ms=5)],
        [new_event(user_id="a", track_id=3, type="play", context="search"), {"not": "an event"}],
    ]
    for events in batches:
        rows = archived(tmp_path, events)
        assert list(rows.columns) == [f.name for f in ARCHIVE_ROW_SCHEMA.fields] and len(rows) == len(events)
        assert rows["rejected"].isna().sum() == 1
        for f in ARCHIVE_ROW_SCHEMA.fields:
            if f.name != "ts":
                converted = pa.Array.from_pandas(rows[f.name], type=to_arrow_type(f.dataType))
                assert isinstance(converted, pa.Array), f.name  # not a ChunkedArray, which Spark refuses
    shared = archived(tmp_path, batches[1]).iloc[0]
    assert (shared["shared"], shared["context"], shared["position_ms"]) == ("playlist:x", "for-you", 5)
    assert archived(tmp_path, batches[0]).iloc[0]["context"] is None
