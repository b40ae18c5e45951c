"""Listener accounts in Mongo ``users`` (``_id`` = the name, which is also the listener id in events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

COLLECTION = "users"


def add(db: Database, name: str, credentials: dict[str, Any]) -> None:
    """A new account; raises ValueError when the name is taken, or differs from a taken one only in case (players
    sign in without case: :func:`signing_in`)."""
    if db[COLLECTION].find_one({"_id": name}, {"_id": 1}):
        raise ValueError(f"user {name!r} already exists")
    alike = _alike(db, name)
    if alike:
        raise ValueError(f"user {alike[0]!r} already exists, and players sign in without case: choose another name")
    db[COLLECTION].insert_one({"_id": name, "created_at": datetime.now(UTC), **credentials})


def replace_credentials(db: Database, name: str, credentials: dict[str, Any]) -> bool:
    return db[COLLECTION].update_one({"_id": name}, {"$set": credentials}).matched_count == 1


def get(db: Database, name: str) -> dict[str, Any] | None:
    return db[COLLECTION].find_one({"_id": name})


def signing_in(db: Database, name: str) -> dict[str, Any] | None:
    """The account a player signs in to as ``name``: the one of that name, else the one whose name differs from it
    only in case (a phone's keyboard capitalises the first letter; other Subsonic servers match names without
    case); None when there is none. Its ``_id`` is the listener's name, whatever case was typed."""
    doc = get(db, name)
    if doc is not None:
        return doc
    alike = _alike(db, name)
    return get(db, alike[0]) if len(alike) == 1 else None


def _alike(db: Database, name: str) -> list[str]:
    """The accounts whose names equal ``name`` but for case."""
    return [n for n in names(db) if n.casefold() == name.casefold()]


def by_api_key_hash(db: Database, digest: str) -> dict[str, Any] | None:
    return db[COLLECTION].find_one({"api_key_sha256": digest})


def names(db: Database) -> list[str]:
    return sorted(d["_id"] for d in db[COLLECTION].find({}, {"_id": 1}))


def remove(db: Database, name: str) -> bool:
    return db[COLLECTION].delete_one({"_id": name}).deleted_count == 1
