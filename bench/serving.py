# ruff: noqa: T201 - a command-line tool: it prints its table
"""Serving-store benchmark: upserts per second of a listener's ``recommendations`` document.

    python -m bench.serving            # 5,000 listeners (about a minute)
    python -m bench.serving --full     # 20,000 listeners

Writes the stream's document for every listener into a scratch database of the
configured server (``mongo.uri``; the local stack's FerretDB by default, which
must be up), the way the stream does: unordered ``ReplaceOne(upsert=True)`` by
``_id`` in commands of ``mongo_io.UPSERT_CHUNK``, two commands in flight (one
per core's task). Each shape is timed twice: first writes (inserts: a listener
new to the serving store) and rewrites (a listener whose document exists, the
steady state). Ours keeps the 20 items as parallel arrays
(:func:`recommend.items.stored_items`); the baseline is the same items as a
list of sub-documents. Prints a table, then one JSON line. The scratch database
is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from conf.settings import load_settings
from connectors import mongo_io
from recommend.items import stored_items

K = 20
GENRES = ["Rock", "Electronic", "Hip-Hop", "Folk", "Jazz", "Pop", "Classical", "Experimental"]


def items(i: int) -> list[dict]:
    """20 items like the stream's: ids, closeness, a worded reason, a genre."""
    return [
        {
            "track_id": 100_000 + (i * 37 + j * 11) % 90_000,
            "score": round(0.9 - j * 0.01, 4),
            "reason": f"sounds like 'Track {i % 500 + j}', which you liked; close in timbre and harmony",
            "genre": GENRES[(i + j) % len(GENRES)],
        }
        for j in range(K)
    ]


def document(i: int, columnar: bool) -> dict:
    ranked = items(i)
    return {
        "_id": f"listener-{i:07d}",
        "items": stored_items(ranked) if columnar else ranked,
        "source": "taste",
        "index_version": "v-bench",
        "trigger_event_id": uuid.UUID(int=i).hex,
        "trigger_type": "like",
        "trigger_track_id": ranked[0]["track_id"],
        "trigger_event_ms": 1_764_000_000_000 + i,
        "events_in_batch": 1,
        "events_total": 12 + i % 50,
        "profile": {
            "events": 12 + i % 50,
            "counts": {"play": 5, "complete": 3, "skip": 2, "like": 1, "dislike": 1},
            "skip_rate": 0.4,
            "top_genres": GENRES[:3],
            "skips_by_genre": {"Rock": 1, "Jazz": 1},
            "last_event_at_ms": 1_764_000_000_000 + i,
        },
        "written_at": datetime.now(UTC),
    }


def upserts_per_s(db, collection: str, docs: list[dict], in_flight: int) -> float:
    from pymongo import ReplaceOne

    ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs]
    chunks = [ops[i : i + mongo_io.UPSERT_CHUNK] for i in range(0, len(ops), mongo_io.UPSERT_CHUNK)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        for _ in pool.map(lambda chunk: db[collection].bulk_write(chunk, ordered=False), chunks):
            pass
    return len(docs) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="20,000 listeners instead of 5,000")
    parser.add_argument("--listeners", type=int, help="number of documents (overrides --full)")
    parser.add_argument("--in-flight", type=int, default=2, help="commands at once (default 2)")
    args = parser.parse_args(argv)
    settings = load_settings()
    n = args.listeners or (20_000 if args.full else 5_000)
    client = mongo_io.connect(settings)
    name = f"earshot_bench_serving_{uuid.uuid4().hex[:8]}"
    db = client[name]
    rates: dict[str, float] = {}
    try:
        for shape, columnar in (("nested", False), ("columnar", True)):
            docs = [document(i, columnar) for i in range(n)]
            db[shape].insert_one({"_id": "warm-up"})
            rates[f"{shape}_insert"] = upserts_per_s(db, shape, docs, args.in_flight)
            rates[f"{shape}_rewrite"] = upserts_per_s(db, shape, docs, args.in_flight)
            count = db[shape].count_documents({})
            if count != n + 1:
                raise SystemExit(f"bench.serving: {shape} holds {count} documents, expected {n + 1}")
    finally:
        client.drop_database(name)
    result = {
        "bench": "serving",
        "listeners": n,
        "items": K,
        "in_flight": args.in_flight,
        "chunk": mongo_io.UPSERT_CHUNK,
        "server": settings.mongo.uri,
        **{f"{k}_per_s": round(v) for k, v in rates.items()},
        "rewrite_speedup": round(rates["columnar_rewrite"] / rates["nested_rewrite"], 2),
        "insert_speedup": round(rates["columnar_insert"] / rates["nested_insert"], 2),
        "targets": {"columnar_rewrite_per_s": 5000},
    }
    rows = [
        ("upserts/s, first write (insert)", rates["columnar_insert"], rates["nested_insert"]),
        ("upserts/s, rewrite (steady state)", rates["columnar_rewrite"], rates["nested_rewrite"]),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{f'serving store, {n:,} listeners':<{width}}  {'columnar':>10}  {'nested':>10}")
    for label, ours, base in rows:
        print(f"{label:<{width}}  {ours:>10,.0f}  {base:>10,.0f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
