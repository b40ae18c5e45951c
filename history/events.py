"""Matched listens as listening events, and the import's report: what was read, matched, and what was not.

A listen becomes a ``complete`` event (a scrobble means the track was played at least half way, or
four minutes: Last.fm's rule, which ListenBrainz keeps), a loved track a ``like``, a hated one a
``dislike``. Each event's id is derived from the listener, the kind, the time and the track, so
the same listen read twice (a duplicate line, or the same file imported again) is one event: the
MERGE into Delta ``events`` and the taste's dedup both keep it once. Pure.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from events.contract import format_ts
from history.formats import Listen, Problem
from history.match import RULES

EVENT_TYPE = {"listen": "complete", "like": "like", "dislike": "dislike"}
NAMESPACE = uuid.UUID("6f6b1d2e-5d3a-4f43-9a57-6b1c0a7e2f11")  # history imports' event ids
CONTEXT = "history"  # the events' context: where the listener found the track (an import, not this server)


def event_id(user_id: str, kind: str, at: int, track_id: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{user_id}\x1f{kind}\x1f{at}\x1f{track_id}"))


def listen_events(
    user_id: str, listens: Sequence[Listen], matches: Sequence[tuple[int, str] | None], fmt: str
) -> list[dict]:
    """One event per matched listen, each id once (the first of a repeated listen), oldest first."""
    out: dict[str, dict] = {}
    for listen, match in zip(listens, matches, strict=True):
        if match is None:
            continue
        track_id = int(match[0])
        eid = event_id(user_id, listen.kind, listen.at, track_id)
        if eid not in out:
            out[eid] = {
                "event_id": eid,
                "user_id": user_id,
                "track_id": track_id,
                "type": EVENT_TYPE[listen.kind],
                "ts": format_ts(datetime.fromtimestamp(listen.at, UTC)),
                "client": f"import:{fmt}",
                "context": CONTEXT,
            }
    return sorted(out.values(), key=lambda e: (e["ts"], e["event_id"]))


def report(
    listens: Sequence[Listen],
    problems: Sequence[Problem],
    matches: Sequence[tuple[int, str] | None],
    events: Sequence[dict],
    *,
    top: int = 10,
) -> dict:
    """What an import did: lines read, listens matched by each rule, unmatched, repeats, and the artists and
    tracks most played among the unmatched (what the library lacks)."""
    by_rule = Counter(m[1] for m in matches if m is not None)
    unmatched = [x for x, m in zip(listens, matches, strict=True) if m is None]
    artists = Counter(x.artist for x in unmatched)
    tracks = Counter((x.artist, x.title) for x in unmatched)
    matched = sum(by_rule.values())
    return {
        "read": len(listens) + len(problems),
        "listens": len(listens),
        "problems": len(problems),
        "matched": matched,
        "matched_by": {rule: by_rule.get(rule, 0) for rule in RULES},
        "unmatched": len(unmatched),
        "repeated": matched - len(events),  # matched listens that were another's repeat (the same event id)
        "events": len(events),
        "top_unmatched_artists": [{"artist": a, "listens": n} for a, n in artists.most_common(top)],
        "top_unmatched_tracks": [{"artist": a, "title": t, "listens": n} for (a, t), n in tracks.most_common(top)],
        "first_problems": [str(p) for p in problems[:top]],
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
