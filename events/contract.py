"""The listening event, defined once: validation, the published JSON Schema, and the Spark schema.

An event is a JSON object on Kafka topic ``listens``, keyed by user id:

- ``event_id`` (string, unique), ``user_id`` (string), ``track_id`` (integer > 0),
- ``type``: play | complete | skip | like | dislike | share,
- ``ts``: ISO-8601 UTC time of the action (``2026-11-24T05:40:00.123Z``),
- optional ``position_ms`` (integer, 0 to 24 h), ``session_id`` and ``client`` (strings), and on a
  ``share``, ``shared``: what was shared, ``track``, ``radio`` (the track's song radio) or
  ``playlist:<id>`` (``track_id`` is then the shared track, the radio's seed or the playlist's first track);
  ``context``: where the listener found the track (``for-you``, ``search``, ``radio``, ``playlist:<id>``,
  ``link``; free text for other apps), so analytics can tell how recommendations fare.

Strings are at most :data:`MAX_STRING` characters of valid Unicode; a message
is at most :data:`MAX_MESSAGE_BYTES` bytes of UTF-8 JSON. :func:`decode_message`
is the one place where bytes read from Kafka become an event: every byte
sequence either passes it or raises :class:`InvalidEvent` with a reason, and
:func:`dead_letter_raw` turns any message into a bounded, JSON-safe copy for
the dead-letter topic.

The topic also carries history messages (``import-history``): a listener's imported listens, folded
into their taste by the stream and archived by the job itself (:func:`check_history`):
``{"event_id": "history:<hash>", "user_id", "ts": when sent, "history": [[track_id, type, ts_ms], ...]}``,
at most :data:`MAX_HISTORY` listens a message, each of any type but ``share`` and as old as it is. Its
``event_id`` names the listens it carries, so the stream folds one history message once.

Other fields are allowed and ignored, so clients can add fields before the
contract names them. ``events/listening-event.schema.json`` is generated from
:data:`FIELDS` (``python -m events.contract``); a test keeps it in step.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

EventType = Literal["play", "complete", "skip", "like", "dislike", "share"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
SCHEMA_FILE = Path(__file__).with_name("listening-event.schema.json")
SCHEMA_ID = "https://earshot.invalid/schemas/listening-event/v1"
MAX_MESSAGE_BYTES = 64 * 1024  # an event is a few hundred bytes; anything this big is not one
MAX_STRING = 256  # characters in any string field (ids, client)
MAX_POSITION_MS = 24 * 3600 * 1000  # no track is longer than a day
MAX_TRACK_ID = 2**63 - 1  # Spark's long
DEFAULT_MAX_AGE_S = 30 * 24 * 3600.0  # older events (an app offline for longer) go to the dead-letter topic
DEAD_LETTER_RAW_BYTES = 16 * 1024  # the copy of a message kept in its dead letter
HISTORY = "history"  # the field (and the decoded type) of a history message
HISTORY_TYPES = tuple(t for t in EVENT_TYPES if t != "share")  # what an imported listen can be
MAX_HISTORY = 1000  # listens in one history message (well under MAX_MESSAGE_BYTES)


@dataclass(frozen=True)
class Field:
    """One field and its rules: :func:`check_event` enforces them and :func:`json_schema` publishes them."""

    name: str
    kind: Literal["string", "integer"]
    required: bool
    description: str
    enum: tuple[str, ...] = ()  # the only values allowed
    bounds: tuple[int, int] | None = None  # an integer's minimum and maximum
    pattern: str = ""  # a regular expression a string must match (searched, as JSON Schema does) ...
    pattern_says: str = ""  # ... and what it means, for the reason
    only_for: str = ""  # the event type this field belongs to (absent or null on others)
    utc_time: bool = False  # an ISO-8601 time in UTC (:func:`parse_ts`), within the stream's window


SHARED_PATTERN = r"^(track|radio|playlist:.+)$"
UTC_PATTERN = r"(Z|\+00:00)$"  # what the JSON Schema can say of a UTC time (parse_ts says the rest)
FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", True, "unique id of this event (a UUID); duplicates are dropped"),
    Field("user_id", "string", True, "the listener; also the Kafka message key"),
    Field("track_id", "integer", True, "catalogue id of the track", bounds=(1, MAX_TRACK_ID)),
    Field("type", "string", True, "what happened: " + " | ".join(EVENT_TYPES), enum=EVENT_TYPES),
    Field("ts", "string", True, "when it happened, ISO-8601 in UTC", utc_time=True),
    Field("position_ms", "integer", False, "playback position in milliseconds", bounds=(0, MAX_POSITION_MS)),
    Field("session_id", "string", False, "the listening session"),
    Field("client", "string", False, "the app that sent it"),
    Field("shared", "string", False, "on a share: track, radio (the track's song radio) or playlist:<id>",
          pattern=SHARED_PATTERN, pattern_says="track, radio or playlist:<id>", only_for="share"),  # fmt: skip
    Field(
        "context", "string", False, "where the listener found the track: search, for-you, radio, playlist:<id>, link"
    ),
)


class InvalidEvent(ValueError):
    """An event breaks the contract; the message is the reason sent to the dead-letter topic."""


def parse_ts(value: str) -> datetime:
    """An ISO-8601 time with an explicit UTC offset (``Z`` or ``+00:00``) as an aware datetime."""
    if len(value) > 40:
        raise InvalidEvent(f"ts is {len(value)} characters; an ISO-8601 time has at most 40")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"ts {value!r} is not an ISO-8601 time") from None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        raise InvalidEvent(f"ts {value!r} must be in UTC (end it with Z)")
    return parsed


def decode_message(
    value: bytes | None, *, now: datetime, max_future_s: float, max_age_s: float = DEFAULT_MAX_AGE_S
) -> dict[str, Any]:
    """A Kafka message value (any bytes) -> a valid event, or :class:`InvalidEvent` with the reason."""
    if not value:
        raise InvalidEvent("empty message")
    if len(value) > MAX_MESSAGE_BYTES:
        raise InvalidEvent(f"message is {len(value)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"not UTF-8: invalid byte 0x{value[exc.start]:02x} at position {exc.start}") from None
    try:
        event = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise InvalidEvent("not JSON: nested too deeply") from None
    except ValueError as exc:  # _no_constant, or an integer literal with too many digits
        raise InvalidEvent(f"not JSON: {exc}") from None
    if isinstance(event, dict) and HISTORY in event:
        return check_history(event, now=now, max_future_s=max_future_s, max_age_s=max_age_s)
    return check_event(event, now=now, max_future_s=max_future_s, max_age_s=max_age_s)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def dead_letter_raw(value: bytes | None, *, limit: int = DEAD_LETTER_RAW_BYTES) -> dict[str, Any]:
    """A message's bytes as dead-letter fields that any JSON reader takes, at most ``limit`` bytes of them.

    ``raw`` is the text (undecodable bytes replaced by U+FFFD); when the bytes
    are not UTF-8, ``raw_base64`` holds them exactly; ``raw_bytes`` is the
    original length and ``raw_truncated`` says whether the copy was cut.
    """
    data = bytes(value or b"")
    kept = data[:limit]
    fields: dict[str, Any] = {
        "raw": kept.decode("utf-8", errors="replace"),
        "raw_bytes": len(data),
        "raw_truncated": len(data) > limit,
    }
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        fields["raw_base64"] = base64.b64encode(kept).decode("ascii")
    return fields


def check_event(
    event: Any, *, now: datetime, max_future_s: float, max_age_s: float = DEFAULT_MAX_AGE_S
) -> dict[str, Any]:
    """Return the event if it keeps the contract (each field's rules in :data:`FIELDS`, then the time
    window); raise :class:`InvalidEvent` with the reason."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(event).__name__}")
    for f in FIELDS:
        if f.name not in event or event[f.name] is None:
            if f.required:
                raise InvalidEvent(f"missing field {f.name}")
            continue
        _check_type(f, event[f.name])
    for f in FIELDS:
        if event.get(f.name) is not None:
            _check_value(f, event[f.name], event["type"])
    ts = parse_ts(event["ts"])
    if ts > now + timedelta(seconds=max_future_s):
        raise InvalidEvent(f"ts {event['ts']} is more than {max_future_s:.0f} s in the future")
    if ts < now - timedelta(seconds=max_age_s):
        raise InvalidEvent(f"ts {event['ts']} is more than {max_age_s / 86400:.0f} days in the past")
    return event


def check_history(
    message: dict[str, Any], *, now: datetime, max_future_s: float, max_age_s: float = DEFAULT_MAX_AGE_S
) -> dict[str, Any]:
    """A history message as the stream folds it: ``type`` ``history``, ``history`` a list of (track_id, type,
    ts_ms) oldest first, ``track_id`` the newest listen's; or :class:`InvalidEvent` with the reason.

    The message's own ``ts`` (when it was sent) keeps the stream's window; its listens may be years old."""
    listens = message[HISTORY]
    if not isinstance(listens, list) or not 1 <= len(listens) <= MAX_HISTORY:
        raise InvalidEvent(f"{HISTORY} must be a list of 1 to {MAX_HISTORY} [track_id, type, ts_ms] listens")
    newest = (now + timedelta(seconds=max_future_s)).timestamp() * 1000
    out = []
    for n, listen in enumerate(listens):
        if not (isinstance(listen, list) and len(listen) == 3 and all(_is_int(x) for x in listen[::2])):
            raise InvalidEvent(f"{HISTORY}[{n}] is not a [track_id, type, ts_ms] listen")
        track_id, kind, ts_ms = listen
        if not 1 <= track_id <= MAX_TRACK_ID or kind not in HISTORY_TYPES or not 0 <= ts_ms <= newest:
            kinds = ", ".join(HISTORY_TYPES)
            raise InvalidEvent(f"{HISTORY}[{n}]: track_id 1 to {MAX_TRACK_ID}, type one of {kinds}, ts_ms from 0 "
                               f"to now, got {json.dumps(listen)[:80]}")  # fmt: skip
        out.append((track_id, kind, ts_ms))
    out.sort(key=lambda x: x[2])
    checked = check_event({**message, "track_id": out[-1][0], "type": "play"}, now=now, max_future_s=max_future_s,
                          max_age_s=max_age_s)  # fmt: skip
    return {**checked, "type": HISTORY, HISTORY: out}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_type(f: Field, value: Any) -> None:
    if f.kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        raise InvalidEvent(f"{f.name} must be an integer, got {type(value).__name__}")
    if f.kind == "string" and not isinstance(value, str):
        raise InvalidEvent(f"{f.name} must be a string, got {type(value).__name__}")
    if f.kind == "string":
        if f.required and not value.strip():
            raise InvalidEvent(f"{f.name} is empty")
        if len(value) > MAX_STRING:
            raise InvalidEvent(f"{f.name} is {len(value)} characters; the limit is {MAX_STRING}")
        if not _is_unicode(value):
            raise InvalidEvent(f"{f.name} is not valid Unicode (a lone surrogate escape)")


def _check_value(f: Field, value: Any, event_type: str) -> None:
    if f.enum and value not in f.enum:
        raise InvalidEvent(f"unknown {f.name} {value!r}; expected one of {', '.join(f.enum)}")
    if f.bounds and not f.bounds[0] <= value <= f.bounds[1]:
        raise InvalidEvent(f"{f.name} must be between {f.bounds[0]} and {f.bounds[1]}, got {_short(value)}")
    if f.only_for and event_type != f.only_for:
        raise InvalidEvent(f"{f.name} is only for a {f.only_for} event, not {event_type!r}")
    if f.pattern and not re.search(f.pattern, value):
        raise InvalidEvent(f"{f.name} must be {f.pattern_says}, got {value[:40]!r}")


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: int) -> str:
    text = str(value) if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
    return text


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12), derived from :data:`FIELDS` as :func:`check_event` reads them.

    What it cannot say: the time window (now-relative), lone surrogates, and that an integer is not written
    ``5.0`` (JSON Schema counts it as one; the validator does not).
    """
    props: dict[str, Any] = {}
    for f in FIELDS:
        prop: dict[str, Any] = {"type": f.kind if f.required else [f.kind, "null"], "description": f.description}
        if f.enum:
            prop["enum"] = list(f.enum)
        if f.bounds:
            prop["minimum"], prop["maximum"] = f.bounds
        if f.utc_time:
            prop["format"] = "date-time"
            prop["pattern"] = UTC_PATTERN
        elif f.kind == "string":
            if f.required:
                prop["minLength"], prop["pattern"] = 1, r"\S"  # not blank
            if f.pattern:
                prop["pattern"] = f.pattern
            prop["maxLength"] = MAX_STRING
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
        # A field that belongs to one event type is absent (or null) on the others.
        "allOf": [
            {
                "if": {"not": {"properties": {"type": {"const": f.only_for}}}},
                "then": {"properties": {f.name: {"type": "null"}}},
            }
            for f in FIELDS
            if f.only_for
        ],
    }


def spark_schema():
    """The Spark struct for parsing event JSON (every field nullable: validation says why)."""
    from pyspark.sql import types as T

    kinds = {"string": T.StringType(), "integer": T.LongType()}
    return T.StructType([T.StructField(f.name, kinds[f.kind], True) for f in FIELDS])


if __name__ == "__main__":
    SCHEMA_FILE.write_text(json.dumps(json_schema(), indent=2) + "\n")
    sys.stdout.write(f"wrote {SCHEMA_FILE}\n")
