"""What a listener keeps about items in their player: stars, ratings (Mongo ``annotations``), the play queue
(Mongo ``play_queues``). Each listener reads and changes only their own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database


def _key(user: str, kind: str, item: str) -> str:
    return f"{user}\x1f{kind}\x1f{item}"


def star(db: Database, user: str, items: list[str], *, on: bool) -> None:
    now = datetime.now(UTC)
    for item in items:
        if on:
            db["annotations"].update_one(
                {"_id": _key(user, "star", item)},
                {"$set": {"user": user, "kind": "star", "item": item}, "$setOnInsert": {"at": now}},
                upsert=True,
            )
        else:
            db["annotations"].delete_one({"_id": _key(user, "star", item)})


def rate(db: Database, user: str, item: str, rating: int) -> None:
    if rating == 0:
        db["annotations"].delete_one({"_id": _key(user, "rating", item)})
        return
    db["annotations"].update_one(
        {"_id": _key(user, "rating", item)},
        {"$set": {"user": user, "kind": "rating", "item": item, "value": rating, "at": datetime.now(UTC)}},
        upsert=True,
    )


def starred(db: Database, user: str) -> dict[str, datetime]:
    """Item id -> when it was starred."""
    return {d["item"]: d["at"] for d in db["annotations"].find({"user": user, "kind": "star"})}


def ratings(db: Database, user: str) -> dict[str, int]:
    return {d["item"]: int(d["value"]) for d in db["annotations"].find({"user": user, "kind": "rating"})}


def marks(db: Database, user: str) -> tuple[dict[str, datetime], dict[str, int]]:
    """:func:`starred` and :func:`ratings` in one query."""
    stars: dict[str, datetime] = {}
    rated: dict[str, int] = {}
    for d in db["annotations"].find({"user": user, "kind": {"$in": ["star", "rating"]}}):
        if d["kind"] == "star":
            stars[d["item"]] = d["at"]
        else:
            rated[d["item"]] = int(d["value"])
    return stars, rated


def save_queue(db: Database, user: str, *, entries: list[int], current: int | None, position_ms: int,
               client: str | None) -> None:  # fmt: skip
    doc = {"entries": entries, "current": current, "position_ms": position_ms, "changed": datetime.now(UTC),
           "changed_by": client or ""}  # fmt: skip
    db["play_queues"].update_one({"_id": user}, {"$set": doc}, upsert=True)


def queue(db: Database, user: str) -> dict[str, Any] | None:
    return db["play_queues"].find_one({"_id": user})
