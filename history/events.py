"""Matched listens as listening events, and the import's report: what was read, matched, and what was not.

A listen becomes a ``complete`` event (a scrobble means the track was played at least half way, or
four minutes: Last.fm's rule, which ListenBrainz keeps), a loved track a ``like``, a hated one a
``dislike``. Each event's id is derived from the listener, the kind, the time and the track, so
the same listen read twice (a duplicate line, or the same file imported again) is one event: the
MERGE into Delta ``events`` keeps it once, and only the events it did not hold yet go to the stream,
in history messages that it folds once each (:func:`history_messages`). Pure.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from events.contract import HISTORY, MAX_HISTORY, format_ts
from history.formats import Listen
from history.match import RULES

EVENT_TYPE = {"listen": "complete", "like": "like", "dislike": "dislike"}
NAMESPACE = uuid.UUID("6f6b1d2e-5d3a-4f43-9a57-6b1c0a7e2f11")  # history imports' event ids
CONTEXT = "history"  # the events' context: where the listener found the track (an import, not this server)


def event_id(user_id: str, kind: str, at: int, track_id: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{user_id}\x1f{kind}\x1f{at}\x1f{track_id}"))


def event_of(user_id: str, listen: Listen, track_id: int, fmt: str) -> dict:
    """The listening event of one matched listen (the contract's fields; its time is the listen's)."""
    return {
        "event_id": event_id(user_id, listen.kind, listen.at, track_id),
        "user_id": user_id,
        "track_id": int(track_id),
        "type": EVENT_TYPE[listen.kind],
        "ts": format_ts(datetime.fromtimestamp(listen.at, UTC)),
        "client": f"import:{fmt}",
        "context": CONTEXT,
    }


def listen_events(
    user_id: str, listens: Sequence[Listen], matches: Sequence[tuple[int, str] | None], fmt: str
) -> list[dict]:
    """One event per matched listen, each id once (the first of a repeated listen), oldest first."""
    out: dict[str, dict] = {}
    for listen, match in zip(listens, matches, strict=True):
        if match is None:
            continue
        event = event_of(user_id, listen, match[0], fmt)
        out.setdefault(event["event_id"], event)
    return sorted(out.values(), key=lambda e: (e["ts"], e["event_id"]))


def history_messages(user_id: str, events: Sequence[dict], now: datetime, size: int = MAX_HISTORY) -> list[dict]:
    """The stream's history messages (``events.contract.check_history``) for new events of one listener
    (``event_id``, ``track_id``, ``type``, ``ts_ms``): oldest first, ``size`` a message. A message's id is
    a hash of the event ids it carries, so the same new events make the same messages: sent again (an
    import retried after it sent them), the stream folds them once."""
    ordered = sorted(events, key=lambda e: (e["ts_ms"], e["event_id"]))
    messages = []
    for start in range(0, len(ordered), size):
        chunk = ordered[start : start + size]
        digest = hashlib.blake2b(f"{user_id}\x1f".encode() + "\x1f".join(e["event_id"] for e in chunk).encode(),
                                 digest_size=16).hexdigest()  # fmt: skip
        messages.append({
            "event_id": f"{HISTORY}:{digest}",
            "user_id": user_id,
            "ts": format_ts(now),
            "client": "import-history",
            HISTORY: [[int(e["track_id"]), e["type"], int(e["ts_ms"])] for e in chunk],
        })  # fmt: skip
    return messages


def report(
    *,
    listens: int,
    problems: int,
    matched_by: dict[str, int],
    unmatched: int,
    events: int,
    top_artists: Sequence[tuple[str, int]],
    top_tracks: Sequence[tuple[str, str, int]],
    first_problems: Sequence[str],
) -> dict:
    """What an import did, from its counts: lines read, listens matched by each rule, unmatched, repeats (a
    matched listen whose event another already is), and the most played of what the library lacks."""
    matched = sum(matched_by.get(rule, 0) for rule in RULES)
    return {
        "read": listens + problems,
        "listens": listens,
        "problems": problems,
        "matched": matched,
        "matched_by": {rule: matched_by.get(rule, 0) for rule in RULES},
        "unmatched": unmatched,
        "repeated": matched - events,
        "events": events,
        "top_unmatched_artists": [{"artist": a, "listens": n} for a, n in top_artists],
        "top_unmatched_tracks": [{"artist": a, "title": t, "listens": n} for a, t, n in top_tracks],
        "first_problems": list(first_problems),
    }


def report_lines(r: dict) -> list[str]:
    """The report as a person reads it on stdout."""
    lines = [
        f"read {r['read']} lines: {r['listens']} listens, {r['problems']} problems",
        f"matched {r['matched']} ({', '.join(f'{n} by {rule}' for rule, n in r['matched_by'].items())}), "
        f"{r['unmatched']} not in this library; {r['events']} events ({r['repeated']} repeats)",
    ]
    if r["top_unmatched_artists"]:
        lines.append("most played of what the library lacks: " + "; ".join(
            f"{a['artist']} ({a['listens']})" for a in r["top_unmatched_artists"]))  # fmt: skip
    lines += [f"problem: {p}" for p in r["first_problems"]]
    return lines
