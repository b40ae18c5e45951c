"""Fold a micro-batch of raw listening messages into many listeners' tastes at once (pure: no Spark, no I/O).

The stream's stateful step hands this module every message of one state
bucket (many listeners) in one call. :func:`sort_messages` decodes and checks
each message once (``events.contract.decode_message`` and the catalogue of the
current index) and groups the valid ones by listener; :func:`fold_listener`
applies one listener's events to their taste; :func:`fold_batch` does both for
the whole bucket and returns what the sinks write: one :class:`Folded` per
listener touched, and the dead letters.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from events.contract import InvalidEvent, decode_message, parse_ts
from index.query import SimilarityIndex
from recommend.taste import Taste

log = logging.getLogger("earshot.fold")

MESSAGE_COLUMNS = ("value", "kafka_partition", "kafka_offset", "kafka_ts_ms")


@dataclass(frozen=True)
class Rules:
    """What makes a message valid, beyond its own contract (settings of the stream)."""

    now: datetime
    max_future_s: float
    max_age_s: float
    quarantined: Callable[[int, int], str | None] = lambda partition, offset: None


@dataclass
class Folded:
    """One listener after a batch: the new taste (None: nothing valid yet) and what was applied."""

    user_id: str
    taste: Taste | None
    applied: list[dict] = field(default_factory=list)  # event_id, type, track_id, ts_ms, kafka_offset
    duplicates: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.applied)

    def trigger(self) -> dict:
        """The newest applied event (event time, then offset): what the recommendations answer."""
        return max(self.applied, key=lambda a: (a["ts_ms"], a["kafka_offset"]))


def sort_messages(
    frame: pd.DataFrame, index: SimilarityIndex | None, rules: Rules
) -> tuple[dict[str, list[dict]], list[dict]]:
    """Decode and check every message: (valid events by listener, in offset order; dead letters).

    ``frame`` has ``value`` (bytes), ``kafka_partition``, ``kafka_offset``,
    ``kafka_ts_ms`` and, optionally, ``user_key`` (the listener id Spark grouped
    by; a message whose decoded ``user_id`` differs is rejected). A dead letter
    is ``{"reason", "raw", "user_key", "kafka_partition", "kafka_offset",
    "kafka_ts_ms"}``.
    """
    catalogue = index.catalogue if index is not None else None
    order = np.lexsort((frame["kafka_offset"].to_numpy(), frame["kafka_partition"].to_numpy()))
    columns = [frame[c].to_numpy()[order].tolist() for c in MESSAGE_COLUMNS]
    keys = frame["user_key"].to_numpy()[order].tolist() if "user_key" in frame else [None] * len(frame)
    events: dict[str, list[dict]] = defaultdict(list)
    dead: list[dict] = []
    for key, value, partition, offset, kafka_ts in zip(keys, *columns, strict=True):
        partition, offset = int(partition), int(offset)
        try:
            held = rules.quarantined(partition, offset)
            if held:
                raise InvalidEvent(held)
            event = decode_message(value, now=rules.now, max_future_s=rules.max_future_s, max_age_s=rules.max_age_s)
            if key is not None and event["user_id"] != key:
                raise InvalidEvent("user_id is not a plain JSON string")
            if catalogue is None:
                raise InvalidEvent("no index is published yet, so no track can be checked")
            if event["track_id"] not in catalogue:
                raise InvalidEvent(f"track_id {event['track_id']} is not in the catalogue")
            event["ts_ms"] = int(parse_ts(event["ts"]).timestamp() * 1000)
        except InvalidEvent as exc:
            dead.append(_letter(str(exc), value, key, partition, offset, kafka_ts))
            continue
        except Exception as exc:  # noqa: BLE001 - no message may stop the stream: it goes to the DLQ, said why
            log.exception("message at partition %s offset %s could not be processed", partition, offset)
            dead.append(_letter(f"could not be processed: {type(exc).__name__}: {exc}"[:500], value, key, partition,
                                offset, kafka_ts))  # fmt: skip
            continue
        event["kafka_offset"] = offset
        events[event["user_id"]].append(event)
    return dict(events), dead


def _letter(reason: str, value: Any, key: str | None, partition: int, offset: int, kafka_ts: Any) -> dict:
    return {
        "reason": reason,
        "raw": value,
        "user_key": key or None,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_ts_ms": int(kafka_ts) if kafka_ts is not None else None,
    }


def fold_listener(
    user_id: str, taste: Taste | None, events: list[dict], index: SimilarityIndex, *, half_life_ms: float
) -> Folded:
    """Apply one listener's valid events (offset order) to their taste; repeated event ids are dropped."""
    folded = Folded(user_id, taste)
    catalogue = index.catalogue
    for event in events:
        taste = taste or Taste()
        if taste.is_duplicate(event["event_id"]):
            folded.duplicates += 1
            continue
        track_id = event["track_id"]
        vector = index.raw_of(track_id) if track_id in index else None
        genre = catalogue.get(track_id).genre
        taste.apply(event["type"], track_id, event["ts_ms"], vector, genre=genre, half_life_ms=half_life_ms)
        taste.remember(event["event_id"], event["ts_ms"])
        folded.applied.append({k: event[k] for k in ("event_id", "type", "track_id", "ts_ms", "kafka_offset")})
    if folded.applied:
        taste.forget_old_ids()
    folded.taste = taste
    return folded


def fold_batch(
    frame: pd.DataFrame,
    tastes: Mapping[str, Taste] | Callable[[list[str]], Mapping[str, Taste]],
    index: SimilarityIndex | None,
    rules: Rules,
    *,
    half_life_ms: float,
) -> tuple[list[Folded], list[dict]]:
    """One bucket's messages -> (one Folded per listener with a valid event, dead letters).

    ``tastes`` holds the stored taste of listeners who have one, or is a function
    that reads them for a list of listener ids (only the listeners in the batch
    are read).
    """
    by_user, dead = sort_messages(frame, index, rules)
    if not by_user:
        return [], dead
    assert index is not None  # sort_messages rejects every event without an index
    users = sorted(by_user)
    stored = tastes(users) if callable(tastes) else tastes
    return [fold_listener(u, stored.get(u), by_user[u], index, half_life_ms=half_life_ms) for u in users], dead
