"""Documents the serving store takes from any server: cleaned values, escaped keys, the listener document."""

from __future__ import annotations

import math

import pytest

from connectors.mongo_io import clean_document, safe_key

pytestmark = pytest.mark.unit


def test_keys_from_outside_are_escaped_not_refused():
    assert safe_key("Alt. Rock") == "Alt\uff0e Rock"
    assert safe_key("$weird") == "\uff04weird" and safe_key("a$b") == "a$b"
    clean_document({safe_key("St. Louis"): 1, safe_key("$x"): 2})  # no ValueError


def test_clean_document_refuses_unsafe_keys_and_drops_non_finite_numbers():
    with pytest.raises(ValueError, match="not allowed"):
        clean_document({"a.b": 1})
    assert clean_document({"x": math.nan, "y": [1.0, math.inf], "z": {"w": 2}}) == {
        "x": None,
        "y": [1.0, None],
        "z": {"w": 2},
    }


def test_a_genre_with_a_dot_cannot_break_the_listener_document(tmp_path):
    import json

    from recommend.fold import Folded
    from recommend.items import Recommendation
    from recommend.taste import Taste
    from spark_jobs.streaming.rows import listener_document

    taste = Taste()
    taste.apply("skip", 5, 1_000, None, genre="Alt. Rock", half_life_ms=1.0)

    class Index:
        version = "v1"

    folded = Folded("u1", taste, applied=[{"event_id": "e", "type": "skip", "track_id": 5, "ts_ms": 1_000,
                                            "kafka_offset": 0}])  # fmt: skip
    doc = json.loads(json.dumps(listener_document(folded, Recommendation("taste", []), Index())))
    assert doc["profile"]["skips_by_genre"] == {"Alt\uff0e Rock": 1}
    clean_document(doc)  # every key is allowed


def test_serving_writes_wait_out_a_lost_connection_then_give_up(monkeypatch):
    from pymongo.errors import AutoReconnect, BulkWriteError

    from spark_jobs.streaming import serving as stream_serving

    calls = []

    def flaky(db, collection, docs, **kw):
        calls.append(len(docs))
        if len(calls) < 3:
            raise AutoReconnect("connection refused")
        return len(docs)

    monkeypatch.setattr(stream_serving.mongo_io, "upsert_many", flaky)
    monkeypatch.setattr(stream_serving.time, "sleep", lambda s: None)
    serving = stream_serving.Serving("mongodb://127.0.0.1:1/", "db", 100, retry_s=60)
    serving.write([{"_id": "u1"}])
    assert calls == [1, 1, 1], "retried until the server answered"

    def down(db, collection, docs, **kw):
        raise AutoReconnect("still down")

    monkeypatch.setattr(stream_serving.mongo_io, "upsert_many", down)
    with pytest.raises(AutoReconnect):
        stream_serving.Serving("mongodb://127.0.0.1:1/", "db", 100, retry_s=0).write([{"_id": "u1"}])

    def refused(db, collection, docs, **kw):
        raise BulkWriteError({"writeErrors": [{"errmsg": "bad"}]})

    monkeypatch.setattr(stream_serving.mongo_io, "upsert_many", refused)
    with pytest.raises(BulkWriteError):  # a refused document is not an outage: no retry
        stream_serving.Serving("mongodb://127.0.0.1:1/", "db", 100, retry_s=60).write([{"_id": "u1"}])
