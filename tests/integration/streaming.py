"""Helpers of the stream's integration tests: an isolated environment, a synthetic index, waiting, messages."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conf.settings import Settings, load_settings
from events.contract import format_ts
from index.local import build_version
from index.synthetic import COLUMNS, synthetic_catalogue
from tests.conftest import isolated_environ


def stream_environ(root: Path, tag: str, **extra: str) -> dict[str, str]:
    """Real services; this test's own topics, database, lake, index and checkpoints."""
    suffix = uuid.uuid4().hex[:8]
    return isolated_environ(
        root,
        MONGO_DATABASE=f"earshot_test_{tag}_{suffix}",
        EARSHOT__KAFKA__LISTENS_TOPIC=f"listens-{tag}-{suffix}",
        EARSHOT__KAFKA__DLQ_TOPIC=f"listens-{tag}-{suffix}.dlq",
        EARSHOT__STREAM__ARCHIVE_TRIGGER_SECONDS="2",
        **extra,
    )


def stream_settings(root: Path, tag: str) -> Settings:
    return load_settings(stream_environ(root, tag))


def publish_synthetic_index(settings: Settings, *, seed: int = 0, version: str | None = None) -> Path:
    ids, raw, frame = synthetic_catalogue(per_genre=80, artists_per_genre=8, seed=0)
    return build_version(
        Path(settings.paths.index_root),
        ids,
        raw,
        COLUMNS,
        feature_version="fma-v1",
        catalogue=frame,
        shards=2,
        pca_components=32,
        seed=seed,
        version=version,
    )


def wait_for(check: Callable[[], object], *, timeout: float = 90.0, what: str = "the stream") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def malformed_messages(track: int) -> dict[str, bytes]:
    """One message of every kind the stream must reject, keyed by the reason it must give."""
    now = datetime.now(UTC)

    def ev(**changes) -> bytes:
        event = {"event_id": uuid.uuid4().hex, "user_id": "bad", "track_id": track, "type": "play",
                 "ts": format_ts(now), **changes}  # fmt: skip
        return json.dumps({k: v for k, v in event.items() if v != "<drop>"}).encode()

    return {
        "not JSON": b"{not json",
        "not JSON: Unterminated string": b'{"event_id": "e1", "user_id": "bad", "track_id": 7, "type": "pl',
        "not UTF-8: invalid byte 0xff": b'{"event_id": "\xff\xfe", "user_id": "x\xc3"}',
        "missing field track_id": ev(track_id="<drop>"),
        "missing field user_id": ev(user_id="<drop>"),
        "track_id must be an integer, got str": ev(track_id="7"),
        "user_id must be a string, got int": ev(user_id=42),
        "an event must be a JSON object, got list": b"[1, 2, 3]",
        "unknown type 'rewind'": ev(type="rewind"),
        "position_ms must be between 0 and": ev(position_ms=-1),
        "s in the future": ev(ts="2099-01-01T00:00:00Z"),
        "days in the past": ev(ts="1999-01-01T00:00:00Z"),
        "is not in the catalogue": ev(track_id=999999),
        "the limit is": ev(padding="x" * 1_000_000),  # about 1 MB, under the broker's message limit
        "empty message": b"",
    }


def fuzzed_messages(rng: random.Random, valid: list[dict], n: int) -> list[tuple[str | None, bytes]]:
    """``n`` bad messages of many kinds, built from valid events by breaking them (keys: user id or None)."""
    now = datetime.now(UTC)
    wrong = {  # values each field's contract refuses
        "event_id": [None, 7, [], "e" * 300],
        "user_id": [None, 42, {}, "u" * 300],
        "track_id": [None, "7", 1.5, [], 2**70],
        "type": [None, 3, "PLAY", "rewind"],
        "ts": [None, 5, "yesterday", "2026-01-01T00:00:00"],
        "position_ms": [-1, "x", 1.5, 10**12],
    }
    out = []
    for i in range(n):
        event = dict(rng.choice(valid), event_id=uuid.uuid4().hex)
        kind = i % 9
        if kind == 0:  # random bytes, most not UTF-8
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        elif kind == 1:  # a valid event cut short
            raw = json.dumps(event).encode()
            value = raw[: rng.randrange(1, len(raw) - 1)]
        elif kind == 2:  # a field of the wrong type or value
            field = rng.choice(sorted(wrong))
            value = json.dumps({**event, field: rng.choice(wrong[field])}).encode()
        elif kind == 3:  # a required field missing
            field = rng.choice(["event_id", "user_id", "track_id", "type", "ts"])
            value = json.dumps({k: v for k, v in event.items() if k != field}).encode()
        elif kind == 4:
            value = json.dumps({**event, "type": rng.choice(["rewind", "PLAY", "", "like "])}).encode()
        elif kind == 5:  # far future or ancient
            ts = now + timedelta(days=rng.choice([1, 400, -90, -20_000]))
            value = json.dumps({**event, "ts": format_ts(ts)}).encode()
        elif kind == 6:
            value = json.dumps({**event, "track_id": rng.choice([0, -5, 10**12, 999_999])}).encode()
        elif kind == 7:  # JSON that is not an object
            value = json.dumps(rng.choice([[event], "event", 42, None, [1, 2]])).encode()
        else:  # invalid UTF-8 inside an otherwise fine event
            value = json.dumps(event).encode().replace(b'"type"', b'"ty\xffpe"')
        key = None if i % 3 == 0 else event["user_id"]
        out.append((key, value))
    return out
