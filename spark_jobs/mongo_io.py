"""Every read and write of MongoDB (the serving store), through pymongo only.

FerretDB v1 (the local server) rejects NaN/Inf doubles and keys with ``.`` or a
leading ``$``; :func:`clean_document` makes documents safe for any server. It
also stalls for good on one bulk command of 100 or more upserts into a SQLite
database (each takes a connection of a 100-connection pool): bulk writes go
in commands of :data:`BULK_CHUNK` operations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import MongoClient, ReplaceOne
from pymongo.database import Database

from conf.settings import Settings


def connect(settings: Settings) -> MongoClient:
    return MongoClient(
        settings.mongo.uri,
        serverSelectionTimeoutMS=settings.mongo.timeout_ms,
        tz_aware=True,
    )


def database(client: MongoClient, settings: Settings) -> Database:
    return client[settings.mongo.database]


def clean_value(value: Any) -> Any:
    """NaN and Inf become None; numpy scalars and arrays become plain Python values."""
    if hasattr(value, "tolist"):  # numpy scalar or array
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return clean_document(value)
    if isinstance(value, (list, tuple)):
        return [clean_value(v) for v in value]
    return value


def clean_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in doc.items():
        key = str(key)
        if "." in key or key.startswith("$"):
            raise ValueError(f"field name {key!r} is not allowed in MongoDB documents")
        out[key] = clean_value(value)
    return out


BULK_CHUNK = 50


def bulk_write(db: Database, collection: str, ops: list) -> int:
    """Run ``ops`` unordered, :data:`BULK_CHUNK` to a command; returns how many were sent."""
    for start in range(0, len(ops), BULK_CHUNK):
        db[collection].bulk_write(ops[start : start + BULK_CHUNK], ordered=False)
    return len(ops)


def upsert_many(db: Database, collection: str, docs: Iterable[Mapping[str, Any]]) -> int:
    """Replace-or-insert each document by its ``_id``; returns how many were written."""
    return bulk_write(db, collection, [ReplaceOne({"_id": d["_id"]}, clean_document(d), upsert=True) for d in docs])


def set_fields_many(db: Database, collection: str, docs: Iterable[Mapping[str, Any]]) -> int:
    """``$set`` each document's fields by ``_id`` (upsert), leaving its other fields as they are."""
    from pymongo import UpdateOne

    ops = []
    for d in docs:
        fields = clean_document({k: v for k, v in d.items() if k != "_id"})
        ops.append(UpdateOne({"_id": d["_id"]}, {"$set": fields}, upsert=True))
    return bulk_write(db, collection, ops)
