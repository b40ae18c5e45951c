"""The listening event, defined once: validation, the published JSON Schema, and the Spark schema.

An event is a JSON object on Kafka topic ``listens``, keyed by user id:

- ``event_id`` (string, unique), ``user_id`` (string), ``track_id`` (integer > 0),
- ``type``: play | complete | skip | like | dislike,
- ``ts``: ISO-8601 UTC time of the action (``2026-11-24T05:40:00.123Z``),
- optional ``position_ms`` (integer >= 0), ``session_id`` and ``client`` (strings).

Other fields are allowed and ignored, so clients can add fields before the
contract names them. ``events/listening-event.schema.json`` is generated from
:data:`FIELDS` (``python -m events.contract``); a test keeps it in step.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

EventType = Literal["play", "complete", "skip", "like", "dislike"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
SCHEMA_FILE = Path(__file__).with_name("listening-event.schema.json")
SCHEMA_ID = "https://earshot.invalid/schemas/listening-event/v1"


@dataclass(frozen=True)
class Field:
    name: str
    kind: Literal["string", "integer"]
    required: bool
    description: str


FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", True, "unique id of this event (a UUID); duplicates are dropped"),
    Field("user_id", "string", True, "the listener; also the Kafka message key"),
    Field("track_id", "integer", True, "catalogue id of the track"),
    Field("type", "string", True, "what happened: " + " | ".join(EVENT_TYPES)),
    Field("ts", "string", True, "when it happened, ISO-8601 in UTC"),
    Field("position_ms", "integer", False, "playback position in milliseconds"),
    Field("session_id", "string", False, "the listening session"),
    Field("client", "string", False, "the app that sent it"),
)


class InvalidEvent(ValueError):
    """An event breaks the contract; the message is the reason sent to the dead-letter topic."""


def parse_ts(value: str) -> datetime:
    """An ISO-8601 time with an explicit UTC offset (``Z`` or ``+00:00``) as an aware datetime."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"ts {value!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        raise InvalidEvent(f"ts {value!r} must be in UTC (end it with Z)")
    return parsed


def check_event(event: Any, *, now: datetime, max_future_s: float) -> dict[str, Any]:
    """Return the event if it keeps the contract; raise :class:`InvalidEvent` with the reason."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(event).__name__}")
    for f in FIELDS:
        if f.name not in event or event[f.name] is None:
            if f.required:
                raise InvalidEvent(f"missing field {f.name}")
            continue
        value = event[f.name]
        if f.kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidEvent(f"{f.name} must be an integer, got {type(value).__name__}")
        if f.kind == "string" and not isinstance(value, str):
            raise InvalidEvent(f"{f.name} must be a string, got {type(value).__name__}")
        if f.kind == "string" and f.required and not value.strip():
            raise InvalidEvent(f"{f.name} is empty")
    if event["type"] not in EVENT_TYPES:
        raise InvalidEvent(f"unknown type {event['type']!r}; expected one of {', '.join(EVENT_TYPES)}")
    if event["track_id"] <= 0:
        raise InvalidEvent(f"track_id must be positive, got {event['track_id']}")
    if event.get("position_ms") is not None and event["position_ms"] < 0:
        raise InvalidEvent(f"position_ms must be >= 0, got {event['position_ms']}")
    ts = parse_ts(event["ts"])
    if ts > now + timedelta(seconds=max_future_s):
        raise InvalidEvent(f"ts {event['ts']} is more than {max_future_s:.0f} s in the future")
    return event


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12), derived from :data:`FIELDS`."""
    props: dict[str, Any] = {}
    for f in FIELDS:
        prop: dict[str, Any] = {"type": f.kind, "description": f.description}
        if f.name == "type":
            prop["enum"] = list(EVENT_TYPES)
        elif f.name == "track_id":
            prop["minimum"] = 1
        elif f.name == "position_ms":
            prop["minimum"] = 0
        elif f.name == "ts":
            prop["format"] = "date-time"
            prop["pattern"] = r"(Z|\+00:00)$"
        elif f.required:
            prop["minLength"] = 1
        props[f.name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Earshot listening event",
        "description": "One listener action, on Kafka topic `listens`, keyed by user_id.",
        "type": "object",
        "properties": props,
        "required": [f.name for f in FIELDS if f.required],
        "additionalProperties": True,
    }


def spark_schema():
    """The Spark struct for parsing event JSON (every field nullable: validation says why)."""
    from pyspark.sql import types as T

    kinds = {"string": T.StringType(), "integer": T.LongType()}
    return T.StructType([T.StructField(f.name, kinds[f.kind], True) for f in FIELDS])


if __name__ == "__main__":
    SCHEMA_FILE.write_text(json.dumps(json_schema(), indent=2) + "\n")
    sys.stdout.write(f"wrote {SCHEMA_FILE}\n")
