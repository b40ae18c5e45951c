"""Every read and write of MongoDB (the serving store), through pymongo only.

FerretDB v1 (the local server) rejects NaN/Inf doubles and keys with ``.`` or a
leading ``$``; :func:`clean_document` makes documents safe for any server. It
also stalls for good on one bulk command of 100 or more general-path updates
into a SQLite database (each takes a connection of a 100-connection pool):
those go in commands of :data:`BULK_CHUNK` operations. Replacement upserts by
``_id`` (:func:`upsert_many`) take Earshot's patched fast path, one
transaction per command, in commands of :data:`UPSERT_CHUNK`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import MongoClient, ReplaceOne
from pymongo.database import Database

from conf.settings import Settings

# ``stream_batches`` holds both stream queries' batches: the archive's documents say so in ``query``.
ARCHIVE_QUERY = "events-archive"
RECOMMENDER_BATCHES = {"query": {"$ne": ARCHIVE_QUERY}}
ARCHIVE_BATCHES = {"query": ARCHIVE_QUERY}


def connect(settings: Settings) -> MongoClient:
    return connect_uri(settings.mongo.uri, timeout_ms=settings.mongo.timeout_ms)


def connect_uri(uri: str, *, timeout_ms: int, socket_timeout_ms: int | None = None) -> MongoClient:
    """A client for ``uri`` (executors get the URI, not the settings object); ``socket_timeout_ms`` bounds a
    call on a server that stops answering mid-way (the dashboard's, which must not hang a page)."""
    return MongoClient(uri, serverSelectionTimeoutMS=timeout_ms, socketTimeoutMS=socket_timeout_ms, tz_aware=True)


def is_store_error(exc: BaseException) -> bool:
    """True for any error of the serving store's client (unreachable, timed out, refused)."""
    from pymongo.errors import PyMongoError

    return isinstance(exc, PyMongoError)


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


BULK_CHUNK = 50  # general-path commands (an $set per document) stall at 100 or more on FerretDB
UPSERT_CHUNK = 100  # replacement upserts by _id: one transaction per command on the patched FerretDB
DUPLICATE_KEY = 11000


def bulk_write(db: Database, collection: str, ops: list, *, chunk: int = BULK_CHUNK) -> int:
    """Run ``ops`` unordered, ``chunk`` to a command; returns how many were sent."""
    for start in range(0, len(ops), chunk):
        db[collection].bulk_write(ops[start : start + chunk], ordered=False)
    return len(ops)


def upsert_many(
    db: Database, collection: str, docs: Iterable[Mapping[str, Any]], *, clean: bool = True, in_flight: int = 1
) -> int:
    """Replace-or-insert each document by its ``_id``; returns how many were written.

    ``clean=False`` skips :func:`clean_document` for documents that are safe by
    construction (decoded from JSON the caller wrote, keys escaped with
    :func:`safe_key`). ``in_flight`` commands run at once, on threads of their
    own clients' pool: the server parses documents on more than one core.
    """
    ops = [ReplaceOne({"_id": d["_id"]}, clean_document(d) if clean else d, upsert=True) for d in docs]
    if in_flight <= 1 or len(ops) <= UPSERT_CHUNK:
        return bulk_write(db, collection, ops, chunk=UPSERT_CHUNK)
    from concurrent.futures import ThreadPoolExecutor

    chunks = [ops[i : i + UPSERT_CHUNK] for i in range(0, len(ops), UPSERT_CHUNK)]
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        for _ in pool.map(lambda chunk: db[collection].bulk_write(chunk, ordered=False), chunks):
            pass
    return len(ops)


def catalogued_genres(db: Database, track_ids: list[int], *, chunk: int = 1000) -> dict[int, str | None]:
    """The ``tracks`` documents among ``track_ids``: track id -> its genre (None when untagged)."""
    out: dict[int, str | None] = {}
    for start in range(0, len(track_ids), chunk):
        ids = [int(t) for t in track_ids[start : start + chunk]]
        for doc in db["tracks"].find({"_id": {"$in": ids}}, {"genre_top": 1}):
            out[int(doc["_id"])] = doc.get("genre_top") or None
    return out


def catalogue_documents(db: Database, fields: Iterable[str]):
    """Every Mongo ``tracks`` document, with ``fields`` only (a cursor)."""
    return db["tracks"].find({}, dict.fromkeys(fields, 1))


def recommendation_of(db: Database, user: str, fields: Iterable[str]) -> dict[str, Any]:
    """A listener's ``recommendations`` document (the stream's latest answer), ``fields`` only; {} when none."""
    return db["recommendations"].find_one({"_id": user}, dict.fromkeys(fields, 1)) or {}


def safe_key(key: str) -> str:
    """A field name any MongoDB server takes: ``.`` and a leading ``$`` become their full-width forms."""
    key = str(key).replace(".", "\uff0e")
    return "\uff04" + key[1:] if key.startswith("$") else key


def set_fields_many(db: Database, collection: str, docs: Iterable[Mapping[str, Any]]) -> int:
    """``$set`` each document's fields by ``_id`` (upsert), leaving its other fields as they are.

    With ids that are not strings (the catalogue's track ids), the documents are first inserted whole (the
    document a ``$set`` upsert would make), and only the ones already there get the ``$set``: FerretDB's
    ``$set`` upsert of an integer ``_id`` that is not there yet reads the whole collection (39 ms a document at
    2,000, growing with it: a first ingest of 2,000 files spent 135 of its 156 s there), while an insert and a
    ``$set`` of an existing document use the ``_id`` index (2,000 inserts in ~0.1 s).
    """
    from pymongo import UpdateOne

    fields = [(d["_id"], clean_document({k: v for k, v in d.items() if k != "_id"})) for d in docs]
    there = fields if all(isinstance(i, str) for i, _ in fields) else _insert_new(db, collection, fields)
    bulk_write(db, collection, [UpdateOne({"_id": i}, {"$set": f}, upsert=True) for i, f in there])
    return len(fields)


def _insert_new(db: Database, collection: str, fields: list[tuple[Any, dict]]) -> list[tuple[Any, dict]]:
    """Insert each (id, fields) as a document; the ones whose ``_id`` is taken are returned, in order."""
    from pymongo.errors import BulkWriteError

    taken: list[tuple[Any, dict]] = []
    for start in range(0, len(fields), UPSERT_CHUNK):
        part = fields[start : start + UPSERT_CHUNK]
        try:
            db[collection].insert_many([{"_id": i, **f} for i, f in part], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            taken += [part[e["index"]] for e in sorted(errors, key=lambda e: e["index"])]
    return taken


def retrying(write, *, seconds: float, what: str):
    """Run ``write()``; while the server is unreachable, try again with backoff (0.5 s to 5 s) for ``seconds``.

    For idempotent writes only (upserts, ``$set`` by ``_id``): a retried command that had in fact been
    applied changes nothing. Errors other than a lost connection (a refused document) are raised at once,
    and so is the last lost connection once the next wait would end past ``seconds``.
    """
    import logging

    from pymongo.errors import ConnectionFailure
    from tenacity import Retrying, retry_if_exception_type, stop_before_delay, wait_exponential

    log = logging.getLogger("earshot.mongo")

    def said(state) -> None:
        exc = state.outcome.exception()
        log.warning(
            "%s: the database did not answer (%s); retrying in %.1f s", what, type(exc).__name__, state.upcoming_sleep
        )

    for attempt in Retrying(
        retry=retry_if_exception_type(ConnectionFailure),
        wait=wait_exponential(multiplier=0.5, max=5.0),
        stop=stop_before_delay(seconds),
        before_sleep=said,
        reraise=True,
    ):
        with attempt:
            return write()
    return None  # not reached: the last attempt returns or raises
