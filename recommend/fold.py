"""Fold a micro-batch of raw listening messages into many listeners' tastes at once (pure: no Spark, no I/O).

The stream's stateful step hands this module every message of one state
bucket (many listeners) in one call. :func:`sort_messages` decodes and checks
each message once (``events.contract.decode_message`` and the catalogue: the
current index's snapshot, then, for ids it lacks, the serving store's, through
a :data:`Lookup` the caller gives) and groups the valid ones by listener; :func:`fold_listener`
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

from events.contract import HISTORY, InvalidEvent, decode_message, parse_ts
from index.reader import Index
from recommend.taste import Taste

log = logging.getLogger("earshot.fold")

MESSAGE_COLUMNS = ("value", "kafka_partition", "kafka_offset", "kafka_ts_ms")
# Track ids -> genre (None when untagged) of those that are catalogued; ids it leaves out are in no catalogue.
Lookup = Callable[[list[int]], Mapping[int, str | None]]


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
    frame: pd.DataFrame, index: Index | None, rules: Rules, lookup: Lookup | None = None
) -> tuple[dict[str, list[dict]], list[dict]]:
    """Decode and check every message: (valid events by listener, in offset order; dead letters).

    ``frame`` has ``value`` (bytes), ``kafka_partition``, ``kafka_offset``,
    ``kafka_ts_ms`` and, optionally, ``user_key`` (the listener id Spark grouped
    by; a message whose decoded ``user_id`` differs is rejected). A track is
    catalogued when the index's snapshot has it or, for the ids it lacks (a track
    ingested after the index was built, or no index yet), when ``lookup`` finds
    it: one call for the whole frame. Each valid event gains ``genre``, ``ts_ms``
    and its Kafka position. A dead letter is ``{"reason", "raw", "user_key", "kafka_partition",
    "kafka_offset", "kafka_ts_ms"}``.
    """
    catalogue = index.catalogue if index is not None else None
    order = np.lexsort((frame["kafka_offset"].to_numpy(), frame["kafka_partition"].to_numpy()))
    columns = [frame[c].to_numpy()[order].tolist() for c in MESSAGE_COLUMNS]
    keys = frame["user_key"].to_numpy()[order].tolist() if "user_key" in frame else [None] * len(frame)
    decoded: list[tuple[dict | None, str | None, tuple]] = []
    for key, value, partition, offset, kafka_ts in zip(keys, *columns, strict=True):
        where = (value, key, int(partition), int(offset), kafka_ts)
        try:
            held = rules.quarantined(where[2], where[3])
            if held:
                raise InvalidEvent(held)
            event = decode_message(value, now=rules.now, max_future_s=rules.max_future_s, max_age_s=rules.max_age_s)
            if key is not None and event["user_id"] != key:
                raise InvalidEvent("user_id is not a plain JSON string")
            event["ts_ms"] = int(parse_ts(event["ts"]).timestamp() * 1000)
            decoded.append((event, None, where))
        except InvalidEvent as exc:
            decoded.append((None, str(exc), where))
        except Exception as exc:  # noqa: BLE001 - no message may stop the stream: it goes to the DLQ, said why
            log.exception("message at partition %s offset %s could not be processed", where[2], where[3])
            decoded.append((None, f"could not be processed: {type(exc).__name__}: {exc}"[:500], where))
    genres = _genres(catalogue, [t for e, _, _ in decoded if e is not None for t in _track_ids(e)], lookup)
    events: dict[str, list[dict]] = defaultdict(list)
    dead: list[dict] = []
    for event, reason, where in decoded:
        if event is not None and event["type"] == HISTORY:
            event[HISTORY] = [(t, kind, ts, genres[t]) for t, kind, ts in event[HISTORY] if t in genres]
            if not event[HISTORY]:
                reason = "no track of the history is in the catalogue"
        elif event is not None and event["track_id"] not in genres:
            reason = f"track_id {event['track_id']} is not in the catalogue"
        if reason is not None:
            dead.append(_letter(reason, *where))
            continue
        assert event is not None
        event["genre"] = genres.get(event["track_id"])
        event["kafka_partition"], event["kafka_offset"] = where[2], where[3]
        events[event["user_id"]].append(event)
    return dict(events), dead


def _track_ids(event: dict) -> list[int]:
    return [t for t, _, _ in event[HISTORY]] if event["type"] == HISTORY else [event["track_id"]]


def _genres(catalogue, track_ids: list[int], lookup: Lookup | None) -> dict[int, str | None]:
    """The genre of each catalogued id of ``track_ids``: the index's snapshot first, ``lookup`` for the rest."""
    out: dict[int, str | None] = {}
    rest = set()
    for t in track_ids:
        track = catalogue.get(t) if catalogue is not None else None
        if track is not None:
            out[t] = track.genre
        else:
            rest.add(t)
    if rest and lookup is not None:
        out.update((int(t), g) for t, g in lookup(sorted(rest)).items() if int(t) in rest)
    return out


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
    user_id: str,
    taste: Taste | None,
    events: list[dict],
    index: Index | None,
    *,
    half_life_ms: float,
    known: Mapping[int, np.ndarray] | None = None,
) -> Folded:
    """Apply one listener's valid events (offset order) to their taste; repeated event ids are dropped.

    A history message (``import-history``) folds each of its listens with its own time, once: its id is
    remembered in the taste, so a replayed or repeated message changes nothing.

    A track the index cannot place (none yet, or one catalogued after it was built) is counted and
    kept pending; a later version that can place it folds it in at the listener's next event.
    ``known``: raw vectors already read for some of the tracks (:func:`raw_vectors`), by track id.
    """
    folded = Folded(user_id, taste)

    def vector_of(track_id: int):
        if known is not None and track_id in known:
            return known[track_id]
        item = index.items([track_id]) if index is not None else None
        return index.vectors(item, raw=True)[0] if item is not None and item[0] >= 0 else None

    def vectors_of(track_ids: list[int]) -> list:
        items = index.items(track_ids) if index is not None else np.full(len(track_ids), -1)
        found = np.flatnonzero(items >= 0)
        rows = index.vectors(items[found], raw=True) if len(found) and index is not None else []
        out: list = [None] * len(track_ids)
        for n, row in zip(found.tolist(), rows, strict=True):
            out[n] = row
        return out

    for event in events:
        taste = taste or Taste()
        if event["type"] == HISTORY:
            if taste.has_imported(event["event_id"]):
                folded.duplicates += 1
                continue
            listens = event[HISTORY]  # each weighs what its age says, in one matrix product
            taste.apply_many(listens, vectors_of([t for t, _, _, _ in listens]), half_life_ms=half_life_ms)
            taste.imported(event["event_id"])
        elif taste.is_duplicate(event["event_id"]):
            folded.duplicates += 1
            continue
        else:
            track_id, ts_ms = event["track_id"], event["ts_ms"]
            taste.apply(event["type"], track_id, ts_ms, vector_of(track_id), genre=event["genre"],
                        half_life_ms=half_life_ms)  # fmt: skip
            taste.remember(event["event_id"], ts_ms)
        folded.applied.append({k: event[k] for k in ("event_id", "type", "track_id", "ts_ms", "kafka_offset")})
    if folded.applied:
        taste.forget_old_ids()
        if taste.pending and index is not None:
            taste.place_pending(vector_of, half_life_ms=half_life_ms)
    folded.taste = taste
    return folded


def fold_batch(
    frame: pd.DataFrame,
    tastes: Mapping[str, Taste] | Callable[[list[str]], Mapping[str, Taste]],
    index: Index | None,
    rules: Rules,
    *,
    half_life_ms: float,
    lookup: Lookup | None = None,
) -> tuple[list[Folded], list[dict]]:
    """One bucket's messages -> (one Folded per listener with a valid event, dead letters).

    ``tastes`` holds the stored taste of listeners who have one, or is a function
    that reads them for a list of listener ids (only the listeners in the batch
    are read).
    """
    by_user, dead = sort_messages(frame, index, rules, lookup)
    if not by_user:
        return [], dead
    users = sorted(by_user)
    stored = tastes(users) if callable(tastes) else tastes
    tracks = {e["track_id"] for events in by_user.values() for e in events if e["type"] != HISTORY}
    known = raw_vectors(index, sorted(tracks))
    return [
        fold_listener(u, stored.get(u), by_user[u], index, half_life_ms=half_life_ms, known=known) for u in users
    ], dead


def raw_vectors(index: Index | None, track_ids: list[int]) -> dict[int, np.ndarray]:
    """The raw vector of each of ``track_ids`` that ``index`` places, read in one gather (not one per event)."""
    if index is None or not track_ids:
        return {}
    items = index.items(np.asarray(track_ids, np.int64))
    found = np.flatnonzero(items >= 0)
    rows = index.vectors(items[found], raw=True) if len(found) else []
    return {track_ids[n]: row for n, row in zip(found.tolist(), rows, strict=True)}
