"""A small producer for client apps: valid events only, keyed by user id, idempotent delivery.

    from events.producer import ListenProducer, new_event

    with ListenProducer("127.0.0.1:9092") as producer:
        producer.send(new_event(user_id="u42", track_id=2, type="like"))

An invalid event raises :class:`events.contract.InvalidEvent` before anything is sent.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from events.contract import EventType, check_event, check_history, format_ts

DEFAULT_MAX_FUTURE_S = 300.0


def new_event(
    *,
    user_id: str,
    track_id: int,
    type: EventType,  # noqa: A002 - the contract's field name
    position_ms: int | None = None,
    session_id: str | None = None,
    client: str | None = None,
    shared: str | None = None,
    context: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """A new event with a fresh ``event_id`` and ``ts`` (now, unless ``at`` is given)."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "user_id": user_id,
        "track_id": track_id,
        "type": type,
        "ts": format_ts(at or datetime.now(UTC)),
    }
    for key, value in (
        ("position_ms", position_ms),
        ("session_id", session_id),
        ("client", client),
        ("shared", shared),
        ("context", context),
    ):
        if value is not None:
            event[key] = value
    return event


class ListenProducer:
    """kafka-python producer with the contract checked on the way out."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic: str = "listens",
        max_future_s: float = DEFAULT_MAX_FUTURE_S,
        max_block_ms: int = 60_000,
    ):
        """``max_block_ms``: how long making the producer (its first contact with the broker) and :meth:`send`
        (the topic's metadata, buffer space) may wait."""
        from kafka import KafkaProducer

        self.topic = topic
        self.max_future_s = max_future_s
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            enable_idempotence=True,  # a retried send is written once
            linger_ms=5,
            max_block_ms=max_block_ms,
            bootstrap_timeout_ms=min(max_block_ms, 30_000),
        )

    def send(self, event: dict[str, Any]):
        """Check and send one event (key = user id); returns kafka-python's future."""
        check_event(event, now=datetime.now(UTC), max_future_s=self.max_future_s)
        value = json.dumps(event, separators=(",", ":")).encode("utf-8")
        return self._producer.send(self.topic, key=event["user_id"].encode("utf-8"), value=value)

    def send_history(self, message: dict[str, Any]):
        """Check and send one history message (``events.contract.check_history``), keyed by its listener."""
        check_history(message, now=datetime.now(UTC), max_future_s=self.max_future_s)
        return self.send_raw(message["user_id"], json.dumps(message, separators=(",", ":")).encode("utf-8"))

    def send_raw(self, key: str | None, value: bytes):
        """Send bytes unchecked: for simulators and tests that exercise the dead-letter path."""
        return self._producer.send(self.topic, key=key.encode("utf-8") if key is not None else None, value=value)

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout)

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> ListenProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.close()
