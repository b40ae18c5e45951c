# ruff: noqa: T201 - a benchmark prints its table
"""Freshness: the stack, the stream and the simulator together; event -> recommendation latency at listener scale.

    python -m bench.freshness          # 500 events/s for 20 s from 5,000 listeners, 50,000 in state
    python -m bench.freshness --full   # 2,000 events/s for 60 s from 20,000 listeners, 1,000,000 in state

Each run has two rows, measured one after the other in the same process:

- ``population``: ``--listeners`` listeners send ``--rate`` events/s between
  them (at 20,000 listeners and 2,000 events/s, one event per listener every
  10 s: most listeners have one event in a micro-batch, as with real people),
  and the state store is first seeded with ``--state-listeners`` tastes
  (``bench.listeners`` writes them; ``stream --initial-tastes`` loads them);
- ``100 listeners``: the same rate from 100 listeners (20 events/s each), the
  load that hides per-listener costs; the baseline beside the first row;
- ``light``: the demo at home, 10 listeners at 3 events/s between them with
  the events archive query on and a dashboard's reads running (the player's
  "For you" panel once a second, the operator page every 5 s): what one
  listener pressing Like waits for (``--light-seconds``, 180 by default: about
  540 events and three of the archive's MERGEs at their one-a-minute rate; in
  60 s the p99 is the second-worst of ~180 events).

Each row starts ``./spark-submit.sh stream`` (local[2]; no archive query but
in the light row) on its own topics, database, checkpoint and a synthetic
genre-structured index (``--tracks``, FMA large's 106,574 by default), warms
it up, then runs the simulator in this process. Latency is from an event's
``ts`` (set when it is produced) to the write of the recommendations that
include it, as the stream records per micro-batch in ``stream_batches``,
which also holds the listeners touched and each stage's cost; the
percentiles weigh each batch's sample by the events it stands for (a batch
keeps at most 2,000 samples), so a big batch counts for its events, not as
one. The warm-up (``--warmup`` s at ``--warmup-rate``, 200/s by default)
touches a few of the population's listeners, so the window starts with the
stream's first seconds at the full rate, most tastes not yet in its copy; the
second half's percentiles are printed beside the whole window's (the steady
state), and ``--warmup-rate 2000 --warmup 30`` measures the steady state
alone. Sustained = the events sent in the window / (the window + the drain after it), the drain ending
when the stream was done with the last message's batch (that batch's ``at`` in ``stream_batches``, which is
taken once its recommendations are written, plus its dead letters' send; the table also shows when the
benchmark's 0.5 s poll first saw it). Beside it, the rate the stream got through between its batch ends in
the window (and in its second half): under a steady offered rate that rate while the stream keeps up, its
capacity when it falls behind, without counting the last batch's latency (the drain) as lost throughput. The
cores each process used in the window (the stream's JVM, its Python workers, FerretDB, the broker, this
process's load generator) say where the machine's CPU went. Accounting: produced = applied + dead-lettered +
duplicates dropped.
Quality: the share of a listener's top 10 in their favourite genres, beside
chance. Needs the local stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.listeners import write_initial_tastes
from bench.load import FastListenProducer
from conf.settings import REPO_ROOT, load_settings
from connectors import kafka_io, mongo_io
from index.local import build_version
from index.reader import Index
from index.synthetic import COLUMNS, synthetic_catalogue
from spark_jobs.streaming.sink import STAGES
from tools.simulate import Simulator

# The design's targets: at scale it keeps up (sustained >= 1,950 of 2,000 events/s) with p99 <= 5 s; at home
# (the light row) p50 <= 0.8 s, p99 <= 1.5 s.
TARGET = {"p99_ms": 5000.0, "events_per_s": 1950.0}
LIGHT_TARGET = {"p50_ms": 800.0, "p99_ms": 1500.0}
DASHBOARD_POLL_S = 1.0  # the player's "For you" fragment (dashboard/player.py, run_every)
OPERATOR_POLL_S = 5.0


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


def wait(check, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    """``check()``'s first true value within ``timeout``; a ``process`` that ends first ends the benchmark."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise SystemExit(f"bench.freshness: the stream exited ({process.returncode}) before {what} (log: {log})")
        time.sleep(0.5)
    raise SystemExit(f"bench.freshness: timed out waiting for {what}")


def with_event_log(spark_conf: tuple[str, ...], root: Path) -> tuple[str, ...]:
    """``spark_conf``, and an event log folder in the row's folder when the event log is on without one (Spark's
    default, /tmp/spark-events, must exist beforehand or the stream fails at start)."""
    keys = {kv.split("=", 1)[0] for kv in spark_conf}
    if "spark.eventLog.enabled=true" not in spark_conf or "spark.eventLog.dir" in keys:
        return spark_conf
    (root / "events").mkdir(exist_ok=True)
    return (*spark_conf, f"spark.eventLog.dir=file:{root / 'events'}")


class DashboardReads:
    """What an open dashboard reads while the row runs: one listener's "For you" each second, the operator's
    batches every 5 s (each on its own client, as the page's sessions have)."""

    def __init__(self, settings, user_id: str):
        self.settings, self.user_id = settings, user_id
        self.stopping = threading.Event()
        self.reads = 0
        self.thread = threading.Thread(target=self._run, name="dashboard-reads", daemon=True)

    def __enter__(self) -> DashboardReads:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(10)

    def _run(self) -> None:
        with mongo_io.connect(self.settings) as client:
            db = mongo_io.database(client, self.settings)
            last_operator = 0.0
            while not self.stopping.wait(DASHBOARD_POLL_S):
                db["recommendations"].find_one({"_id": self.user_id})
                if time.monotonic() - last_operator >= OPERATOR_POLL_S:
                    list(db["stream_batches"].find(mongo_io.RECOMMENDER_BATCHES).sort("at", -1).limit(300))
                    last_operator = time.monotonic()
                self.reads += 1


def weighted_percentiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Percentiles of ``values`` where each counts ``weights`` times (the inverted weighted CDF)."""
    if not len(values):
        return [float("nan")] * len(qs)
    order = np.argsort(values)
    v, cdf = values[order], np.cumsum(weights[order])
    return [float(v[min(np.searchsorted(cdf, q / 100 * cdf[-1]), len(v) - 1)]) for q in qs]


def batch_end(b: dict) -> float | None:
    """When the stream was done with a batch that read messages (epoch seconds): its document's ``at`` (taken
    once every recommendation of the batch was written) plus its dead letters' send; None for other batches."""
    if not b.get("input_rows") or not isinstance(b.get("at"), datetime):
        return None
    return b["at"].replace(tzinfo=b["at"].tzinfo or UTC).timestamp() + b.get("dlq_ms", 0.0) / 1000


def finished_at(batches: list[dict]) -> float | None:
    """When the stream was done with the last batch that read messages (epoch seconds, :func:`batch_end`). The
    drain ends there, not when a poll of ``stream_batches`` first sees the batch (up to 0.5 s later, and after
    the document's own write on the sink's recording thread)."""
    return max((t for t in map(batch_end, batches) if t is not None), default=None)


def applied_rate(batches: list[dict], start: float, end: float) -> float | None:
    """The messages per second the stream got through between two of its batch ends in [``start``, ``end``]
    (epoch seconds): from the first batch to end at or after ``start`` to the last to end by ``end``, the
    messages of every batch after the first over the time between the two ends. Under a steady offered rate it
    is that rate while the stream keeps up and the stream's capacity when it falls behind; unlike sent /
    (window + drain) it does not count the last batch's latency (the drain) as lost throughput. None with
    fewer than two such batches."""
    ends = sorted((t, b["input_rows"]) for b in batches if (t := batch_end(b)) is not None and start <= t <= end)
    if len(ends) < 2 or ends[-1][0] <= ends[0][0]:
        return None
    return sum(n for _, n in ends[1:]) / (ends[-1][0] - ends[0][0])


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_kind(pid: int, stream_session: int) -> str | None:
    """What a process is, for the CPU table: the stream's JVM, Python workers or driver (its session), the
    FerretDB and Kafka servers, this benchmark (the load generator), or another process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if pid == os.getpid():
        return "benchmark (load generator)"
    if int(stat[3]) == stream_session:  # the session id (the stream runs in its own)
        if command.startswith("java") or "/java " in command:
            return "stream: Spark JVM"
        return "stream: Python workers" if "pyspark.daemon" in command else "stream: driver's Python"
    if "ferretdb" in command.lower():
        return "FerretDB"
    return "Kafka broker" if "kafka.Kafka" in command else "other"


def cpu_ticks(stream_session: int) -> dict[int, tuple[str, int]]:
    """Every process's CPU time so far (user + system, clock ticks), by pid, with its :func:`process_kind`."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        kind = process_kind(int(entry.name), stream_session)
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if kind is not None:
            out[int(entry.name)] = (kind, int(fields[11]) + int(fields[12]))
    return out


def cpu_cores(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Cores each kind of process used between two :func:`cpu_ticks` (a process started since counts all of
    its time; one that ended since, none of it), busiest first."""
    used: dict[str, float] = {}
    for pid, (kind, ticks) in after.items():
        start = before.get(pid, (kind, 0))[1]
        used[kind] = used.get(kind, 0.0) + max(0, ticks - start) / CLOCK_TICKS / seconds
    return {k: round(v, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.005}


def batch_latencies(batches: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Every batch's latency sample and each sample's weight: the events it stands for over its size."""
    values, weights = [], []
    for b in batches:
        sample = np.asarray(b.get("latency_sample_ms", []), float)
        if len(sample):
            values.append(sample)
            weights.append(np.full(len(sample), max(b.get("latency_events", len(sample)), len(sample)) / len(sample)))
    if not values:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(values), np.concatenate(weights)


def run_row(
    name: str,
    *,
    tracks: int,
    listeners: int,
    rate: float,
    seconds: float,
    state: int,
    warmup: float,
    warmup_rate: float = 200.0,
    keep: bool,
    archive: bool = False,
    dashboard: bool = False,
    spark_conf: tuple[str, ...] = (),
    master: str = "local[2]",
) -> dict:
    root = Path(tempfile.mkdtemp(prefix="earshot-bench-freshness-"))
    env = environ(root)
    settings = load_settings(env)
    per_genre = max(10, tracks // 8)
    ids, raw, frame = synthetic_catalogue(per_genre=per_genre, artists_per_genre=max(5, per_genre // 10), seed=3)
    # The index as build-index makes it from these settings (shards, probe cap, exact scoring), not
    # build_version's exact-search defaults: the stream is measured on the index it would really serve.
    cfg = settings.index
    build_version(
        Path(settings.paths.index_root),
        ids,
        raw,
        COLUMNS,
        feature_version="fma-v1",
        catalogue=frame,
        shards=cfg.shards,
        probe=cfg.probe,
        exact_tracks=cfg.exact_tracks,
        n_trees=cfg.n_trees,
        search_k=cfg.search_k,
        pca_components=cfg.pca_components,
        seed=cfg.seed,
    )
    index = Index.open(settings.paths.index_root)
    catalogue = index.catalogue
    for topic in (settings.kafka.listens_topic, settings.kafka.dlq_topic):
        kafka_io.ensure_topic(settings, topic)
    client = mongo_io.connect(settings)
    db = mongo_io.database(client, settings)
    # Population rows browse the catalogue: 20,000 simulated apps each reading their recommendations
    # would be a read load of its own on the same two cores.
    sim = Simulator(
        settings, catalogue, listeners=listeners, seed=5, from_recommendations=0.6 if listeners <= 100 else 0.0
    )
    confs = [arg for kv in with_event_log(spark_conf, root) for arg in ("--conf", kv)]
    command = [str(REPO_ROOT / "spark-submit.sh"), "--master", master, *confs, "stream"]
    if not archive:
        command.append("--no-archive")
    seeded_s = 0.0
    if state:
        t = time.monotonic()
        favourites = [(li.user_id, li.favourites) for li in sim.listeners]
        write_initial_tastes(root / "tastes", index, favourites=favourites, total=max(state, listeners),
                             now_ms=int(time.time() * 1000))  # fmt: skip
        seeded_s = time.monotonic() - t
        command += ["--initial-tastes", str(root / "tastes")]
    log = root / "stream.log"
    stream = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        started_stream = time.monotonic()
        # The first batches start Python workers and load the state.
        sim.run(rate=min(rate, 50.0), duration=2.0, producer_class=FastListenProducer)
        wait(lambda: db["recommendations"].count_documents({}) > 0, 900, "the stream to start", stream, log)
        load_s = time.monotonic() - started_stream
        sim.run(rate=min(rate, warmup_rate), duration=warmup, producer_class=FastListenProducer)
        measured_from = datetime.now(UTC)
        before = sim.report.total
        started, started_at = time.monotonic(), time.time()
        ticks = cpu_ticks(stream.pid)
        with DashboardReads(settings, sim.listeners[0].user_id) if dashboard else contextlib.nullcontext():
            sim.run(rate=rate, duration=seconds, producer_class=FastListenProducer)
        produced_window = sim.report.total - before
        send_s = time.monotonic() - started
        cores = cpu_cores(ticks, cpu_ticks(stream.pid), send_s)
        total = sim.report.total

        def accounted():
            docs = list(db["stream_batches"].find(mongo_io.RECOMMENDER_BATCHES, {"input_rows": 1}))
            return sum(d.get("input_rows", 0) for d in docs) >= total

        wait(accounted, 300, "the stream to account for every message", stream, log)
        seen_s = time.monotonic() - started
        time.sleep(1.5)  # the last batch's progress is stored by the next write
        batches = list(db["stream_batches"].find(mongo_io.RECOMMENDER_BATCHES))
        # Not before the send's end: at a light rate the last event's batch can be done before the sender's
        # loop ends (it sleeps out its last tick), which is no drain at all.
        drained_s = max(send_s, (finished_at(batches) or started_at + seen_s) - started_at)
        quality, chance = [], []
        genre_share = frame["genre_top"].value_counts(normalize=True).to_dict()
        for listener in sim.listeners[:2000]:
            doc = db["recommendations"].find_one({"_id": listener.user_id}, {"items.genre": 1})
            top = ((doc or {}).get("items") or {}).get("genre", [])[:10]
            if not top:
                continue
            quality.append(sum(g in listener.favourites for g in top) / len(top))
            chance.append(sum(genre_share.get(g, 0.0) for g in listener.favourites))
        sim.close()
    finally:
        os.killpg(stream.pid, signal.SIGTERM)
        try:
            stream.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(stream.pid, signal.SIGKILL)
        client.drop_database(settings.mongo.database)
        client.close()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)  # a seeded state store and its checkpoint are gigabytes
    window = [b for b in batches if b["at"] >= measured_from.replace(tzinfo=b["at"].tzinfo)]
    latencies, weights = batch_latencies(window)
    # The second half of the window on its own: the stream's steady state once the first batches at the full
    # rate (the host's copy of the tastes still filling) are behind it.
    halfway = (measured_from + timedelta(seconds=seconds / 2)).replace(tzinfo=None)
    later = batch_latencies([b for b in window if b["at"].replace(tzinfo=None) >= halfway])
    applied, dlq, dupes = (sum(b.get(k, 0) for b in batches) for k in ("applied", "dlq", "duplicates"))

    def median(values) -> float | None:
        values = [v for v in values if v is not None]
        return round(float(np.median(values)), 1) if values else None

    p50, p95, p99 = weighted_percentiles(latencies, weights, (50, 95, 99))
    return {
        "row": name,
        "tracks": len(ids),
        "listeners": listeners,
        "state_listeners": max(state, listeners) if state else 0,
        "seed_write_s": round(seeded_s, 1),
        "stream_ready_s": round(load_s, 1),
        "rate_target": rate,
        "seconds": seconds,
        "produced": total,
        "send_rate": round(produced_window / send_s, 1),
        "sustained_events_per_s": round(produced_window / drained_s, 1),
        "drain_after_send_s": round(drained_s - send_s, 2),
        "applied_events_per_s": _rounded(applied_rate(batches, started_at, started_at + send_s)),
        "applied_second_half_events_per_s": _rounded(
            applied_rate(batches, started_at + send_s / 2, started_at + send_s)
        ),
        "drain_seen_s": round(seen_s - send_s, 2),  # as the 0.5 s poll of stream_batches first saw it
        "applied": applied,
        "dlq": dlq,
        "duplicates": dupes,
        "accounted": applied + dlq + dupes == total,
        "archive": archive,
        "dashboard_reads": dashboard,
        "latency_ms": {
            "p50": round(p50, 1),
            "p95": round(p95, 1),
            "p99": round(p99, 1),
            "samples": len(latencies),
            "events": round(float(weights.sum())),
        },
        "latency_second_half_ms": dict(
            zip(("p50", "p99"), (round(x, 1) for x in weighted_percentiles(*later, (50, 99))), strict=True)
        ),
        "batches": len(window),
        "listeners_per_batch_median": median(b.get("users") for b in window),
        "tastes_cached_per_batch_median": median(b.get("tastes_cached") for b in window),
        "batch_ms_median": median(b["duration_ms"].get("triggerExecution") for b in window if b.get("duration_ms")),
        "sink_ms_median": {k: median(b.get(k) for b in window) for k in ("state_and_query_ms", "dlq_ms")},
        # Spark's own phases of a micro-batch (StreamingQueryProgress.durationMs): addBatch is the sink
        # (the stateful step and its writes); the rest is source offsets, planning and the WAL/commit logs.
        "spark_ms_median": {
            k: median(b.get("duration_ms", {}).get(k) for b in window)
            for k in sorted({k for b in window for k in b.get("duration_ms", {})})
        },
        "stage_ms_median": {k: median(b.get("stage_ms", {}).get(k) for b in window) for k in STAGES},
        "quality_top10_in_taste": round(float(np.mean(quality)), 3) if quality else None,
        "quality_chance": round(float(np.mean(chance)), 3) if chance else None,
        "cpu_cores_in_window": cores,  # of the machine's os.cpu_count(), by process
        "target": LIGHT_TARGET if name == "light" else TARGET,
    }


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def target_words(target: dict) -> str:
    """A row's target as the table prints it: the latencies in ms, then the sustained rate where there is one."""
    parts = [f"{k.removesuffix('_ms')} <= {v:.0f} ms" for k, v in target.items() if k.endswith("_ms")]
    if "events_per_s" in target:
        parts.append(f">= {target['events_per_s']:.0f}/s")
    return ", ".join(parts)


def spark_overhead(phases: dict) -> str:
    """latestOffset / queryPlanning + getBatch / walCommit + commitOffsets, medians in ms."""
    parts = (("latestOffset",), ("queryPlanning", "getBatch"), ("walCommit", "commitOffsets"))
    return " / ".join(f"{sum(phases.get(k) or 0 for k in keys):.0f}" for keys in parts)


def print_table(rows: list[dict]) -> None:
    measures = [
        ("listeners (in state)", lambda r: f"{r['listeners']:,} ({r['state_listeners']:,})"),
        ("sent / sustained events/s", lambda r: f"{r['send_rate']:,.0f} / {r['sustained_events_per_s']:,.0f}"),
        ("  drain after the send s (poll saw)", lambda r: f"{r['drain_after_send_s']} ({r['drain_seen_s']})"),
        ("  got through between batch ends /s", lambda r: f"{r['applied_events_per_s'] or 0:,.0f}"),
        ("    in the second half /s", lambda r: f"{r['applied_second_half_events_per_s'] or 0:,.0f}"),
        ("latency p50 / p95 / p99 ms", lambda r: "{p50:.0f} / {p95:.0f} / {p99:.0f}".format(**r["latency_ms"])),
        ("  second half p50 / p99 ms", lambda r: "{p50:.0f} / {p99:.0f}".format(**r["latency_second_half_ms"])),
        ("median batch ms", lambda r: r["batch_ms_median"]),
        ("listeners per batch", lambda r: r["listeners_per_batch_median"]),
        ("  of which tastes from the worker's copy", lambda r: r["tastes_cached_per_batch_median"]),
        ("  addBatch (the sink) ms", lambda r: r["spark_ms_median"].get("addBatch")),
        ("  offsets / planning / logs ms", lambda r: spark_overhead(r["spark_ms_median"])),
        ("  stateful step with Mongo writes ms", lambda r: r["sink_ms_median"]["state_and_query_ms"]),
        ("  dead letters ms", lambda r: r["sink_ms_median"]["dlq_ms"]),
        *[(f"    {s.removesuffix('_ms')} ms (all buckets)", lambda r, s=s: r["stage_ms_median"][s]) for s in STAGES],
        ("  target", lambda r: target_words(r["target"])),
        ("produced = applied+dlq+dup", lambda r: f"{r['produced']} = {r['applied']}+{r['dlq']}+{r['duplicates']}"),
        ("top-10 in taste (chance)", lambda r: f"{r['quality_top10_in_taste']} ({r['quality_chance']})"),
        ("state seed write / stream ready s", lambda r: f"{r['seed_write_s']} / {r['stream_ready_s']}"),
        (f"CPU in the window (of {os.cpu_count()} cores)", lambda r: f"{sum(r['cpu_cores_in_window'].values()):.2f}"),
    ]
    first = rows[0]["cpu_cores_in_window"]
    kinds = sorted({k for r in rows for k in r["cpu_cores_in_window"]}, key=lambda k: -first.get(k, 0.0))
    measures += [(f"  cores: {k}", lambda r, k=k: r["cpu_cores_in_window"].get(k, 0.0)) for k in kinds]
    print(f"{'measure':<36}" + "".join(f"{r['row']:>30}" for r in rows))
    for name, get in measures:
        print(f"{name:<36}" + "".join(f"{get(r)!s:>30}" for r in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="2,000 events/s for 60 s, 20,000 listeners, 1M in state")
    parser.add_argument("--rate", type=float, help="events per second, all listeners together")
    parser.add_argument("--duration", "--seconds", dest="seconds", type=float, help="seconds of load")
    parser.add_argument("--listeners", type=int, help="listeners who send the load")
    parser.add_argument("--state-listeners", type=int, help="listeners' tastes seeded into the state store first")
    parser.add_argument(
        "--tracks", type=int, default=106_574, help="tracks in the synthetic index (default: FMA large's count)"
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before the measured window")
    parser.add_argument(
        "--warmup-rate",
        type=float,
        default=200.0,
        help="events/s of the warm-up (capped at the row's rate; 200 by default: the stream is measured from its "
        "first seconds at the full rate, its copy of the tastes still filling)",
    )
    parser.add_argument(
        "--rows",
        default="light,population,100",
        help="which rows, in order (comma-separated: light, population, 100; default: all three)",
    )
    parser.add_argument("--light-seconds", type=float, default=180.0, help="seconds of the light row's load")
    parser.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for the stream (repeatable), e.g. spark.eventLog.enabled=true to profile its batches",
    )
    parser.add_argument(
        "--master",
        default="local[2]",
        help="the stream's Spark master (local[2]: one task slot per core; its stateful tasks follow "
        "stream.partitions, e.g. EARSHOT__STREAM__PARTITIONS=3 with local[3])",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the 100-listener row")
    parser.add_argument("--keep", action="store_true", help="keep each row's folder (index, seed, checkpoint, log)")
    args = parser.parse_args(argv)
    rate = args.rate or (2000.0 if args.full else 500.0)
    seconds = args.seconds or (60.0 if args.full else 20.0)
    listeners = args.listeners or (20_000 if args.full else 5_000)
    state = args.state_listeners if args.state_listeners is not None else (1_000_000 if args.full else 50_000)
    common = dict(
        tracks=args.tracks, warmup=args.warmup, warmup_rate=args.warmup_rate, keep=args.keep,
        spark_conf=tuple(args.spark_conf), master=args.master,
    )  # fmt: skip
    plans = {
        "light": lambda: run_row("light", listeners=10, rate=3.0, seconds=args.light_seconds, state=0,
                                 archive=True, dashboard=True, **common),  # fmt: skip
        "population": lambda: run_row("population", listeners=listeners, rate=rate, seconds=seconds, state=state,
                                      **common),  # fmt: skip
        "100": lambda: run_row("100 listeners", listeners=100, rate=rate, seconds=seconds, state=0, **common),
    }
    wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in wanted if r not in plans]
    if unknown:
        parser.error(f"--rows: unknown row(s) {', '.join(unknown)}; choose from {', '.join(plans)}")
    if args.no_baseline:
        wanted = [r for r in wanted if r != "100"]
    rows = [plans[r]() for r in wanted]
    print_table(rows)
    result = {"rows": rows, "target": TARGET, "light_target": LIGHT_TARGET}
    print(json.dumps(result))
    return 0 if all(r["accounted"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
