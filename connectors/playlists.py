"""Saved playlists in Mongo ``playlists``: create, read, rename, reorder, delete.

One document per playlist: ``_id`` (a short random id, the one a share link
carries), ``owner`` (a user id), ``name``, ``track_ids`` (in play order),
``source`` (how it was made: ``{"kind": "mood", "mood": {...}}``, ``seed``,
``taste``, ``mix``), ``created_at`` and ``updated_at``. The ``playlists`` job
writes each listener's generated mix under ``mix:<user id>``, replaced on each
run. ``ingest --folder`` writes the library's own playlists (its ``.m3u``
files) with no owner, ``public`` true and ``source`` ``{"kind": "library",
"folder", "path"}``: every listener sees them, and nobody changes them but by
editing the file. Anyone with an id may read a playlist (that is what sharing is); changes
are made by its owner only. A bad request raises :class:`PlaylistStoreError`
with what to fix.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

COLLECTION = "playlists"
MAX_NAME = 100
MAX_TRACKS = 500
MAX_LIBRARY_TRACKS = 50_000  # a library's "All songs.m3u": kept whole up to this
LIBRARY = "library"


class PlaylistStoreError(ValueError):
    """A playlist request that cannot be done: a bad name or order, an unknown id, another owner's playlist."""


def new_id() -> str:
    return secrets.token_urlsafe(8)


def create(db, *, owner: str, name: str, track_ids: Sequence[int], source: dict, allow_empty: bool = False) -> str:
    """Save a new playlist; returns its id (``allow_empty``: a player's new playlist, filled afterwards)."""
    doc = {
        "_id": new_id(),
        "owner": _owner(owner),
        "name": _name(name),
        "track_ids": _tracks(track_ids, allow_empty=allow_empty),
        "source": dict(source),
    }
    now = datetime.now(UTC)
    db[COLLECTION].insert_one({**doc, "created_at": now, "updated_at": now})
    return doc["_id"]


def mix_id(owner: str) -> str:
    return f"mix:{owner}"


def mix_document(owner: str, track_ids: Sequence[int], *, index_version: str, now: datetime) -> dict:
    """The generated mix of a listener, as the ``playlists`` job writes it (replacing the last one)."""
    return {
        "_id": mix_id(owner),
        "owner": _owner(owner),
        "name": "Your mix",
        "track_ids": _tracks(track_ids),
        "source": {"kind": "mix", "index_version": index_version},
        "created_at": now,
        "updated_at": now,
    }


def library_document(folder: str, path: str, track_ids: Sequence[int], *, changed: datetime) -> dict:
    """A playlist file of a library folder (``path`` under ``folder``) as its read-only, ownerless playlist."""
    name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0].strip()[:MAX_NAME] or path
    digest = hashlib.sha1(f"{folder}\0{path}".encode()).hexdigest()[:16]
    return {
        "_id": f"{LIBRARY}:{digest}",
        "owner": None,
        "public": True,
        "name": name,
        "track_ids": [int(t) for t in track_ids][:MAX_LIBRARY_TRACKS],
        "source": {"kind": LIBRARY, "folder": folder, "path": path},
        "updated_at": changed,
    }


def replace_library(db, folder: str, docs: list[dict]) -> None:
    """The library playlists of ``folder`` become ``docs``: each written (its first write dated now), the ones
    of the folder not among them removed."""
    now = datetime.now(UTC)
    for doc in docs:
        db[COLLECTION].update_one({"_id": doc["_id"]}, {"$set": doc, "$setOnInsert": {"created_at": now}}, upsert=True)
    db[COLLECTION].delete_many(
        {"source.kind": LIBRARY, "source.folder": folder, "_id": {"$nin": [d["_id"] for d in docs]}}
    )


def library(db) -> list[dict]:
    """Every library playlist, by name."""
    return sorted(db[COLLECTION].find({"source.kind": LIBRARY}), key=lambda d: (d.get("name", "").casefold(), d["_id"]))


def is_library(doc: dict) -> bool:
    return (doc.get("source") or {}).get("kind") == LIBRARY


def get(db, playlist_id: str) -> dict | None:
    return db[COLLECTION].find_one({"_id": str(playlist_id)})


def list_for(db, owner: str) -> list[dict]:
    """The owner's playlists, newest change first."""
    docs = list(db[COLLECTION].find({"owner": owner}))
    return sorted(docs, key=lambda d: (d.get("updated_at") or datetime.min.replace(tzinfo=UTC)), reverse=True)


def rename(db, playlist_id: str, *, owner: str, name: str) -> None:
    _change(db, playlist_id, owner, {"name": _name(name)})


def reorder(db, playlist_id: str, *, owner: str, track_ids: Sequence[int]) -> None:
    """Set a new play order: the same tracks, or fewer of them (a track taken out)."""
    doc = _owned(db, playlist_id, owner)
    new = _tracks(track_ids, allow_empty=True)
    if len(set(new)) != len(new) or not set(new) <= set(doc["track_ids"]):
        raise PlaylistStoreError("a new order may only move or take out the playlist's own tracks, each once")
    _change(db, playlist_id, owner, {"track_ids": new})


def set_tracks(db, playlist_id: str, *, owner: str, track_ids: Sequence[int]) -> None:
    """Replace the play order with any tracks (a player adds and removes songs by position)."""
    _change(db, playlist_id, owner, {"track_ids": _tracks(track_ids, allow_empty=True)})


def move(db, playlist_id: str, *, owner: str, position: int, by: int) -> list[int]:
    """Move the track at ``position`` up (``by`` < 0) or down; returns the new order."""
    tracks = list(_owned(db, playlist_id, owner)["track_ids"])
    if not 0 <= position < len(tracks):
        raise PlaylistStoreError(f"no track at position {position} (the playlist has {len(tracks)})")
    to = min(max(position + by, 0), len(tracks) - 1)
    tracks.insert(to, tracks.pop(position))
    reorder(db, playlist_id, owner=owner, track_ids=tracks)
    return tracks


def delete(db, playlist_id: str, *, owner: str) -> None:
    _owned(db, playlist_id, owner)
    db[COLLECTION].delete_one({"_id": str(playlist_id), "owner": owner})


def _change(db, playlist_id: str, owner: str, fields: dict) -> None:
    _owned(db, playlist_id, owner)
    db[COLLECTION].update_one(
        {"_id": str(playlist_id), "owner": owner}, {"$set": {**fields, "updated_at": datetime.now(UTC)}}
    )


def _owned(db, playlist_id: str, owner: str) -> dict:
    doc = get(db, playlist_id)
    if doc is None:
        raise PlaylistStoreError(f"no playlist {playlist_id!r}")
    if doc.get("owner") != owner:
        raise PlaylistStoreError(f"playlist {playlist_id!r} belongs to another listener; save a copy to change it")
    return doc


def _owner(owner: str) -> str:
    if not isinstance(owner, str) or not owner.strip():
        raise PlaylistStoreError("a playlist needs an owner (a listener id)")
    return owner


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise PlaylistStoreError("give the playlist a name")
    if len(name) > MAX_NAME:
        raise PlaylistStoreError(f"a playlist name has at most {MAX_NAME} characters, not {len(name)}")
    return name


def _tracks(track_ids: Sequence[int], *, allow_empty: bool = False) -> list[int]:
    tracks = [int(t) for t in track_ids]
    if not tracks and not allow_empty:
        raise PlaylistStoreError("a playlist needs at least one track")
    if len(tracks) > MAX_TRACKS:
        raise PlaylistStoreError(f"a playlist has at most {MAX_TRACKS} tracks, not {len(tracks)}")
    return tracks
