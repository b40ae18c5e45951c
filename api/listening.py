"""How a player's calls become listening events (pure: no I/O).

The rule, in one place:

- ``scrobble`` with ``submission=false`` ("now playing") is a ``play`` (the track started);
- ``scrobble`` with ``submission=true`` (a play the client counts: most send it past half the
  track or four minutes) is a ``complete``;
- ``reportPlayback`` (the ``playbackReport`` extension): ``starting`` is a ``play``; ``stopped``
  before :data:`SKIP_BEFORE` of the track (and before :data:`SKIP_BEFORE_S` seconds) is a
  ``skip`` with its position; ``stopped`` at or past :data:`COMPLETE_FROM` is a ``complete``;
  ``playing`` and ``paused`` only keep the position; with ``ignoreScrobble=true`` nothing is sent;
- ``star`` of a song is a ``like``; ``setRating`` 5 is a ``like`` and 1 a ``dislike`` (2 to 4, 0
  and ``unstar`` change only what the server keeps).

Every event's ``event_id`` is derived from the call (listener, track, kind and the call's time,
``time`` for a scrobble or the second of the call otherwise, or the play's start for a stop),
so a client that retries a call sends the same event and the stream applies it once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

SKIP_BEFORE = 0.5  # of the track's duration ...
SKIP_BEFORE_S = 240.0  # ... or four minutes, the usual scrobble rule's two marks
COMPLETE_FROM = 0.9

State = Literal["starting", "playing", "paused", "stopped"]


@dataclass(frozen=True)
class Planned:
    """An event to send: the contract's fields the call decides."""

    type: str
    track_id: int
    event_id: str
    at_ms: int
    position_ms: int | None = None


def event_id(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, ("subsonic", *parts))).encode("utf-8")).hexdigest()[:32]


def from_scrobble(user: str, track_id: int, *, submission: bool, at_ms: int) -> Planned:
    kind = "complete" if submission else "play"
    return Planned(kind, track_id, event_id(user, track_id, kind, at_ms), at_ms)


def from_report(
    user: str,
    track_id: int,
    *,
    state: str,
    position_ms: int,
    duration_s: float | None,
    started_ms: int,
    now_ms: int,
) -> Planned | None:
    """The event a ``reportPlayback`` call means, if any (``started_ms``: when this play started)."""
    if state == "starting":
        return Planned("play", track_id, event_id(user, track_id, "play", now_ms // 1000), now_ms, position_ms)
    if state != "stopped":
        return None
    position_s = position_ms / 1000
    if duration_s and position_s >= COMPLETE_FROM * duration_s:
        kind = "complete"
    elif position_s < SKIP_BEFORE_S and (not duration_s or position_s < SKIP_BEFORE * duration_s):
        kind = "skip"
    else:
        return None  # heard long enough not to be a skip; the client's scrobble counts it
    return Planned(kind, track_id, event_id(user, track_id, kind, started_ms), now_ms, position_ms)


def from_rating(user: str, track_id: int, *, rating: int, at_ms: int) -> Planned | None:
    kind = {5: "like", 1: "dislike"}.get(rating)
    return Planned(kind, track_id, event_id(user, track_id, kind, at_ms // 1000), at_ms) if kind else None


def from_star(user: str, track_id: int, *, at_ms: int) -> Planned:
    return Planned("like", track_id, event_id(user, track_id, "like", at_ms // 1000), at_ms)
