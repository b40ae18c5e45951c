"""Any bytes at the decoding step: a valid event or InvalidEvent with a reason, never anything else.

Property-based (hypothesis): arbitrary byte strings, arbitrary JSON values,
events with one field replaced by an arbitrary JSON value, and oversized
messages go through ``decode_message`` and ``dead_letter_raw``, then through
the stream's fold and its Arrow output frame, which is where one invalid UTF-8
message used to stop the stream for good.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.contract import (
    DEAD_LETTER_RAW_BYTES,
    FIELDS,
    MAX_MESSAGE_BYTES,
    InvalidEvent,
    dead_letter_raw,
    decode_message,
    format_ts,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def valid_event() -> dict:
    return {"event_id": "e1", "user_id": "u1", "track_id": 7, "type": "like", "ts": format_ts(NOW)}


def outcome(value: bytes | None) -> dict | str:
    try:
        event = decode_message(value, now=NOW, max_future_s=300)
    except InvalidEvent as exc:
        reason = str(exc)
        assert reason and len(reason) < 1000
        json.dumps(reason).encode("utf-8")  # the reason itself is safe to send on
        return reason
    for f in FIELDS:
        if isinstance(event.get(f.name), str):
            event[f.name].encode("utf-8")  # every string of a valid event encodes
    return event


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_give_a_reason(value: bytes):
    outcome(value)
    letter = dead_letter_raw(value)
    assert json.loads(json.dumps(letter)) == letter
    assert letter["raw_bytes"] == len(value)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_decodes_or_gives_a_reason(value):
    outcome(json.dumps(value).encode("utf-8"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([f.name for f in FIELDS]), json_values)
def test_an_event_with_one_field_replaced_is_valid_or_has_a_reason(name: str, value):
    event = {**valid_event(), name: value}
    result = outcome(json.dumps(event).encode("utf-8"))
    if isinstance(result, str):
        assert result  # a reason
    else:
        assert result[name] == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty message"),
        (b"", "empty message"),
        (b'{"event_id": "\xff\xfe", "user_id": "x\xc3"}', "not UTF-8: invalid byte 0xff at position 14"),
        (b'{"event_id": "e1", "user_id"', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "the limit is"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"track_id": NaN}', "NaN is not a JSON number"),
        (b'{"track_id": 1' + b"0" * 5000 + b"}", "not JSON"),
        (b'{"event_id": "e", "user_id": "\\ud800", "track_id": 1, "type": "like", "ts": "x"}', "not valid Unicode"),
        (b"\x00\x01\x02", "not JSON"),
        (b'"just a string"', "an event must be a JSON object, got str"),
    ],
)
def test_known_bad_messages_have_their_reason(value, reason):
    with pytest.raises(InvalidEvent, match=reason):
        decode_message(value, now=NOW, max_future_s=300)


def test_an_oversized_message_is_rejected_and_its_dead_letter_is_bounded():
    value = json.dumps({**valid_event(), "padding": "x" * (1024 * 1024)}).encode()
    with pytest.raises(InvalidEvent, match=f"the limit is {MAX_MESSAGE_BYTES}"):
        decode_message(value, now=NOW, max_future_s=300)
    letter = dead_letter_raw(value)
    assert letter["raw_truncated"] and letter["raw_bytes"] == len(value)
    assert len(json.dumps(letter).encode()) < DEAD_LETTER_RAW_BYTES + 1024


def test_invalid_utf8_keeps_its_exact_bytes_in_base64():
    import base64

    value = b'{"event_id": "\xff\xfe", "user_id": "x\xc3"}'
    letter = dead_letter_raw(value)
    assert base64.b64decode(letter["raw_base64"]) == value
    assert "\ufffd" in letter["raw"] and not letter["raw_truncated"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=80) | json_values.map(lambda v: json.dumps(v).encode()), min_size=1, max_size=12))
def test_the_stream_fold_turns_any_messages_into_rows_arrow_accepts(values):
    """The processor's output for any batch of messages converts to its Arrow schema (where the stream died)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    from recommend.fold import Rules, fold_batch
    from spark_jobs.streaming.rows import OUTPUT_SCHEMA, dead_rows, output_frame

    rows = pd.DataFrame({"value": values, "kafka_partition": 0, "kafka_offset": range(len(values)), "kafka_ts_ms": 0})
    folded, dead = fold_batch(rows, {}, None, Rules(now=NOW, max_future_s=300, max_age_s=86400), half_life_ms=3.6e6)
    assert not folded and len(dead) == len(values)
    frame = output_frame(dead_rows([dict(d) for d in dead]))
    table = pa.Table.from_pandas(frame, schema=to_arrow_schema(OUTPUT_SCHEMA), preserve_index=False)
    assert table.num_rows == len(values) and table.column("raw").type == pa.binary()
    for letter in (dead_letter_raw(d["raw"]) for d in dead):
        json.dumps(letter).encode("utf-8")
