"""A listener's stars and ratings on every song, album and artist the server answers with.

Players show a heart and stars from the ``starred`` and ``userRating`` of each entry they get (an album's songs,
a search, a playlist, similar songs), not only from ``getStarred2``. Rather than every handler looking them up,
:func:`mark` adds them to a reply's entries after the handler, from :class:`Marks`: each listener's annotations
read from Mongo once, forgotten when this server changes them (``star``, ``unstar``, ``setRating``) and read
again after :data:`MARKS_S` (another server process, or a database edit).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors import annotations

MARKS_S = 60.0
RETRY_S = 10.0  # after a failed read, what the listener had (or nothing) stands this long: no wait on every call


@dataclass(frozen=True)
class View:
    starred: dict[str, str]  # item id -> when, as the spec writes it
    ratings: dict[str, int]  # item id -> 1..5


def when(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Marks:
    def __init__(self, db_of):
        self._db_of = db_of  # () -> the serving database
        self._views: dict[str, tuple[float, View]] = {}
        self._lock = threading.Lock()

    def cached(self, user: str) -> View | None:
        """The listener's view when it is in memory and fresh (no database), else None."""
        with self._lock:
            hit = self._views.get(user)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < MARKS_S else None

    def load(self, user: str) -> View:
        """Read the listener's stars and ratings (a blocking database call). When the database does not answer,
        the error is raised, and for :data:`RETRY_S` the listener's last view (or none) is served as cached, so
        a database outage costs one call its timeout, not every call."""
        try:
            stars, rated = annotations.marks(self._db_of(), user)
        except Exception:
            with self._lock:
                old = self._views.get(user)
                self._views[user] = (time.monotonic() - MARKS_S + RETRY_S, old[1] if old else View({}, {}))
            raise
        view = View({item: when(at) for item, at in stars.items()}, rated)
        with self._lock:
            if len(self._views) > 10_000:
                self._views.clear()
            self._views[user] = (time.monotonic(), view)
        return view

    def forget(self, user: str) -> None:
        with self._lock:
            self._views.pop(user, None)


def has_entries(payload: Any) -> bool:
    """Whether a reply holds any song, album or artist for :func:`mark` to mark."""
    if type(payload) is dict:
        return _marked_id(payload) is not None or any(has_entries(v) for v in payload.values())
    if type(payload) is list:
        return any(has_entries(v) for v in payload)
    return False


def mark(payload: Any, view: View) -> None:
    """Add ``starred`` and ``userRating`` to every song, album and artist entry of a reply, in place."""
    if view.starred or view.ratings:  # most listeners have neither: nothing to walk
        _mark(payload, view.starred, view.ratings)


def _mark(payload: Any, starred: dict[str, str], ratings: dict[str, int]) -> None:
    if type(payload) is list:
        for value in payload:
            if type(value) is dict or type(value) is list:
                _mark(value, starred, ratings)
        return
    item = _marked_id(payload)
    if item is not None:
        if item in starred:
            payload["starred"] = starred[item]
        if item in ratings:
            payload["userRating"] = ratings[item]
    for value in payload.values():
        if type(value) is dict or type(value) is list:
            _mark(value, starred, ratings)


def _marked_id(entry: dict) -> str | None:
    """The id of a song (a ``Child`` that is not a directory), an album (``al-``) or an artist (``ar-``)."""
    item = entry.get("id")
    if not isinstance(item, str):
        return None
    if item.startswith(("al-", "ar-")) or (entry.get("isDir") is False and entry.get("mediaType") == "song"):
        return item
    return None
