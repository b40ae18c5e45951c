# ruff: noqa: T201 - a benchmark prints its table
"""Where a micro-batch's time goes, from a Spark event log: the phases, the jobs, the stages and their tasks.

    python -m bench.freshness --rows light --keep \\
        --spark-conf spark.eventLog.enabled=true --spark-conf spark.eventLog.dir=file:///tmp/evlog
    python -m bench.batch_profile /tmp/evlog/eventlog_v2_*        # the recommender's batches, medians

For each batch of the named query (``--query``, the recommender by default) that
read at least one row, it pairs Spark's own phases of the trigger
(``StreamingQueryProgress.durationMs``: offsets, planning, the WAL, addBatch,
the commit log) with the jobs the batch ran and, per stage, its tasks: their
count, the wall time from the first launch to the last finish, and inside the
tasks the run time (deserialisation, the operator's own work, shuffle fetch
waits) against the time a task waited to be scheduled. It prints the medians
over the batches as a table and one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from statistics import median

PROGRESS = "org.apache.spark.sql.streaming.StreamingQueryListener$QueryProgressEvent"
STAGE_KEYS = ("tasks", "wall_ms", "task_ms", "run_ms", "deserialize_ms", "fetch_wait_ms")


def read_events(path: Path):
    """The JSON events of a log: a file, or a rolling log's folder (eventlog_v2_*); zstd ones through ``zstd -dc``."""
    files = sorted(path.glob("events_*"), key=lambda f: int(f.name.split("_")[1])) if path.is_dir() else [path]
    for file in files:
        if file.suffix == ".zstd":
            text = subprocess.run(["zstd", "-dc", str(file)], check=True, capture_output=True).stdout.decode()
        else:
            text = file.read_text(encoding="utf-8")
        for line in text.splitlines():
            if line.strip():
                yield json.loads(line)


def profile(path: Path, query: str) -> list[dict]:
    """One dict per batch of ``query`` with input: Spark's phases, then its jobs and their stages (ms)."""
    progress: dict[int, dict] = {}
    query_id = None
    jobs: dict[int, dict] = {}
    stage_job: dict[int, int] = {}
    tasks: dict[int, list[dict]] = defaultdict(list)
    stage_names: dict[int, str] = {}
    for e in read_events(path):
        kind = e.get("Event")
        if kind == PROGRESS and e["progress"].get("name") == query:
            p = e["progress"]
            query_id = p["id"]
            p["rows"] = sum(src.get("numInputRows", 0) for src in p.get("sources", []))
            if p["rows"] > 0:
                progress[p["batchId"]] = p
        elif kind == "SparkListenerJobStart":
            props = e.get("Properties") or {}
            jobs[e["Job ID"]] = {
                "query": props.get("sql.streaming.queryId"),
                "batch": int(props["streaming.sql.batchId"]) if "streaming.sql.batchId" in props else None,
                "start": e["Submission Time"],
                "stages": [s["Stage ID"] for s in e["Stage Infos"]],
            }
            for s in e["Stage Infos"]:
                stage_job[s["Stage ID"]] = e["Job ID"]
                stage_names[s["Stage ID"]] = s.get("Stage Name", "")
        elif kind == "SparkListenerJobEnd" and e["Job ID"] in jobs:
            jobs[e["Job ID"]]["end"] = e["Completion Time"]
        elif kind == "SparkListenerTaskEnd":
            info, metrics = e["Task Info"], e.get("Task Metrics") or {}
            tasks[e["Stage ID"]].append(
                {
                    "launch": info["Launch Time"],
                    "finish": info["Finish Time"],
                    "run": metrics.get("Executor Run Time", 0),
                    "deserialize": metrics.get("Executor Deserialize Time", 0),
                    "fetch_wait": (metrics.get("Shuffle Read Metrics") or {}).get("Fetch Wait Time", 0),
                }
            )
    batches = []
    for batch_id, p in sorted(progress.items()):
        mine = [j for j in jobs.values() if j["query"] == query_id and j["batch"] == batch_id and "end" in j]
        stages = []
        for job in mine:
            for sid in job["stages"]:
                done = tasks.get(sid)
                if not done:
                    continue  # skipped (its shuffle output reused)
                stages.append(
                    {
                        "stage": stage_names.get(sid, "")[:60],
                        "tasks": len(done),
                        "wall_ms": max(t["finish"] for t in done) - min(t["launch"] for t in done),
                        "task_ms": sum(t["finish"] - t["launch"] for t in done),
                        "run_ms": sum(t["run"] for t in done),
                        "deserialize_ms": sum(t["deserialize"] for t in done),
                        "fetch_wait_ms": sum(t["fetch_wait"] for t in done),
                    }
                )
        batches.append(
            {
                "batch": batch_id,
                "rows": p["rows"],
                "phases_ms": p.get("durationMs", {}),
                "jobs": len(mine),
                "jobs_wall_ms": sum(j["end"] - j["start"] for j in mine),
                "stages": stages,
            }
        )
    return batches


def summary(batches: list[dict]) -> dict:
    """Medians over the batches: each phase, the jobs' wall time, and per stage position its figures."""
    phases = sorted({k for b in batches for k in b["phases_ms"]})
    out = {
        "batches": len(batches),
        "rows_median": median(b["rows"] for b in batches),
        "phases_ms": {k: median(b["phases_ms"].get(k, 0) for b in batches) for k in phases},
        "jobs_median": median(b["jobs"] for b in batches),
        "jobs_wall_ms": median(b["jobs_wall_ms"] for b in batches),
        "stages": [],
    }
    depth = max((len(b["stages"]) for b in batches), default=0)
    for i in range(depth):
        at = [b["stages"][i] for b in batches if len(b["stages"]) > i]
        medians = {k: median(s[k] for s in at) for k in STAGE_KEYS}
        out["stages"].append({"stage": at[0]["stage"], "batches": len(at), **medians})
    return out


def print_table(s: dict) -> None:
    print(f"{s['batches']} batches with input, median {s['rows_median']} rows")
    print(f"{'phase (StreamingQueryProgress.durationMs)':<48}{'median ms':>10}")
    for k, v in s["phases_ms"].items():
        print(f"  {k:<46}{v:>10.0f}")
    print(f"jobs per batch {s['jobs_median']}, their wall time {s['jobs_wall_ms']:.0f} ms")
    print(f"{'stage':<62}" + "".join(f"{h:>15}" for h in STAGE_KEYS))
    for st in s["stages"]:
        print(f"{st['stage']:<62}" + "".join(f"{st[h]:>15.0f}" for h in STAGE_KEYS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "event_log", type=Path, help="a Spark event log: a file or a rolling log's folder (.zstd needs zstd)",
    )
    parser.add_argument("--query", default="recommender", help="the streaming query's name (default: recommender)")
    parser.add_argument("--skip", type=int, default=3, help="first batches left out (Python workers starting)")
    args = parser.parse_args(argv)
    batches = profile(args.event_log, args.query)[args.skip :]
    if not batches:
        print(f"no batch of {args.query} with input in {args.event_log}", file=sys.stderr)
        return 1
    s = summary(batches)
    print_table(s)
    print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
