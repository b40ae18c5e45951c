# ruff: noqa: T201 - a benchmark prints its table
"""Freshness: the stack, the stream and the simulator together; event -> recommendation latency.

    python -m bench.freshness            # 500 events/s for 20 s, 50 listeners
    python -m bench.freshness --full     # 2,000 events/s for 60 s, 100 listeners

Starts ``./spark-submit.sh stream`` (local[2]) on its own topics, database,
checkpoint and a synthetic genre-structured index (8 genres x 250 tracks), warms
it up, then runs the simulator (in this process, beside Spark) at the rate.
Latency is from the time an event was produced (its ``ts``, set at send) to the
time the recommendations that include it were written, as the stream records
per micro-batch in ``stream_batches``. Accounting: messages produced = applied
+ sent to the DLQ + duplicates dropped. Quality: the share of each listener's
top 10 in their favourite genres, beside chance (the share of the catalogue in
them), which is what a listener gets before any event. Needs the local stack.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from conf.settings import REPO_ROOT, load_settings
from index.local import build_version
from index.query import SimilarityIndex
from index.synthetic import COLUMNS, synthetic_catalogue
from spark_jobs import kafka_io, mongo_io
from spark_jobs.simulate import Simulator

TARGET = {"p50_ms": 1000.0, "p99_ms": 2000.0, "events_per_s": 2000.0}


def environ(root: Path) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "MONGO_DATABASE": f"earshot_bench_{tag}",
        "EARSHOT_LAKE_ROOT": str(root / "lake"),
        "EARSHOT_INDEX_ROOT": str(root / "index"),
        "EARSHOT_CHECKPOINT_ROOT": str(root / "checkpoints"),
        "EARSHOT__KAFKA__LISTENS_TOPIC": f"bench-listens-{tag}",
        "EARSHOT__KAFKA__DLQ_TOPIC": f"bench-listens-{tag}.dlq",
        "EARSHOT__SPARK__SHUFFLE_PARTITIONS": "2",
    }


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"bench.freshness: timed out waiting for {what}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="2,000 events/s for 60 s, 100 listeners")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--listeners", type=int)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--no-archive", action="store_true", help="run the stream without its Delta archive query")
    args = parser.parse_args(argv)
    rate = args.rate or (2000.0 if args.full else 500.0)
    seconds = args.seconds or (60.0 if args.full else 20.0)
    listeners = args.listeners or (100 if args.full else 50)

    root = Path(tempfile.mkdtemp(prefix="earshot-bench-freshness-"))
    env = environ(root)
    settings = load_settings(env)
    ids, raw, frame = synthetic_catalogue(per_genre=250, artists_per_genre=25, seed=3)
    build_version(Path(settings.paths.index_root), ids, raw, COLUMNS, feature_version="fma-v1", catalogue=frame)
    catalogue = SimilarityIndex.open(settings.paths.index_root).catalogue
    for topic in (settings.kafka.listens_topic, settings.kafka.dlq_topic):
        kafka_io.ensure_topic(settings, topic)
    client = mongo_io.connect(settings)
    db = mongo_io.database(client, settings)
    log = root / "stream.log"
    stream = subprocess.Popen(
        [str(REPO_ROOT / "spark-submit.sh"), "--master", "local[2]", "stream"] + (["--no-archive"] * args.no_archive),
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        sim = Simulator(settings, catalogue, listeners=listeners, seed=5)
        # Warm up: the first micro-batches start Python workers and load the index.
        sim.run(rate=min(rate, 100.0), duration=2.0)
        wait(lambda: db["recommendations"].count_documents({}) > 0, 240, f"the stream to start (log: {log})")
        sim.run(rate=min(rate, 200.0), duration=args.warmup)
        measured_from = datetime.now(UTC)
        before = sim.report.total
        started = time.monotonic()
        sim.run(rate=rate, duration=seconds)
        produced_window = sim.report.total - before
        send_s = time.monotonic() - started
        total = sim.report.total

        def accounted():
            docs = list(db["stream_batches"].find({}, {"input_rows": 1}))
            return sum(d.get("input_rows", 0) for d in docs) >= total

        wait(accounted, 300, "the stream to account for every message")
        drained_s = time.monotonic() - started
        time.sleep(1.5)  # the last batch's progress is stored by the next write
        batches = list(db["stream_batches"].find())
        window = [b for b in batches if b["at"] >= measured_from.replace(tzinfo=b["at"].tzinfo)]
        latencies = np.concatenate([np.asarray(b.get("latency_sample_ms", []), float) for b in window] or [[]])
        applied = sum(b.get("applied", 0) for b in batches)
        dlq = sum(b.get("dlq", 0) for b in batches)
        dupes = sum(b.get("duplicates", 0) for b in batches)
        durations = [b["duration_ms"]["triggerExecution"] for b in window if b.get("duration_ms")]
        phases = {
            name: float(np.median([b[name] for b in window if name in b])) if window else None
            for name in ("state_and_query_ms", "mongo_ms", "total_ms")
        }
        quality, chance = [], []
        for listener in sim.listeners:
            doc = db["recommendations"].find_one({"_id": listener.user_id})
            if not doc or doc.get("events_total", 0) < 20:
                continue
            top = doc["items"][:10]
            quality.append(sum(i["genre"] in listener.favourites for i in top) / max(1, len(top)))
            chance.append(sum(catalogue.get(t).genre in listener.favourites for t in ids) / len(ids))
        sim.close()
    finally:
        os.killpg(stream.pid, signal.SIGTERM)
        try:
            stream.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(stream.pid, signal.SIGKILL)
        client.drop_database(settings.mongo.database)
        client.close()

    p50, p95, p99 = (float(np.percentile(latencies, q)) if len(latencies) else float("nan") for q in (50, 95, 99))
    result = {
        "archive": not args.no_archive,
        "rate_target": rate,
        "seconds": seconds,
        "listeners": listeners,
        "produced": total,
        "produced_in_window": produced_window,
        "send_rate": round(produced_window / send_s, 1),
        "sustained_events_per_s": round(produced_window / drained_s, 1),
        "drain_after_send_s": round(drained_s - send_s, 2),
        "applied": applied,
        "dlq": dlq,
        "duplicates": dupes,
        "accounted": applied + dlq + dupes == total,
        "simulator": sim.report.as_dict(),
        "latency_ms": {"p50": round(p50, 1), "p95": round(p95, 1), "p99": round(p99, 1), "samples": len(latencies)},
        "batch_ms_median": float(np.median(durations)) if durations else None,
        "sink_phase_ms_median": phases,
        "batches": len(window),
        "quality_top10_in_taste": round(float(np.mean(quality)), 3) if quality else None,
        "quality_chance": round(float(np.mean(chance)), 3) if chance else None,
        "listeners_with_20_events": len(quality),
        "target": TARGET,
    }
    rows = [
        ("latency p50 (ms)", result["latency_ms"]["p50"], TARGET["p50_ms"]),
        ("latency p95 (ms)", result["latency_ms"]["p95"], ""),
        ("latency p99 (ms)", result["latency_ms"]["p99"], TARGET["p99_ms"]),
        ("sustained events/s", result["sustained_events_per_s"], rate),
        ("median batch (ms)", result["batch_ms_median"], ""),
        ("  of which state + index (ms)", phases["state_and_query_ms"], ""),
        ("  of which Mongo writes (ms)", phases["mongo_ms"], ""),
        ("produced = applied + dlq + dup", f"{total} = {applied} + {dlq} + {dupes}", "equal"),
        ("top-10 in taste after 20 events", result["quality_top10_in_taste"], f"chance {result['quality_chance']}"),
    ]
    print(f"{'measure':<34} {'earshot':>26} {'target / baseline':>20}")
    for name, ours, ref in rows:
        print(f"{name:<34} {ours!s:>26} {ref!s:>20}")
    print(json.dumps(result))
    return 0 if result["accounted"] else 1


if __name__ == "__main__":
    sys.exit(main())
