# ruff: noqa: T201 - a command-line tool: it prints its table
"""History import benchmark: 1,000,000 listens of one person against FMA large's 106,574-track catalogue.

    .venv/bin/python -m services.stack up
    .venv/bin/python -m bench.history                 # 1,000,000 listens in a Last.fm CSV (a few minutes)
    .venv/bin/python -m bench.history --listens 100000

The catalogue (Mongo ``tracks`` of a database of its own) has the shape of a real one: 10 tracks an
artist, names with accents, a recording MBID on a third of the tracks. The export is a Last.fm
8-column CSV of ten years of listening: a fifth of the listens carry the recording MBID, half name a
catalogued track the way services write it (other case, "feat." credits, "- 2011 Remaster"
suffixes, accents dropped), and the rest are artists the library lacks. Three rows, in one run:

- baseline: a plain pandas merge on the driver: read the CSV, lower-case and trim artist and title
  on both sides, merge on them (and on the MBID); no normaliser, no archive, no taste;
- ours, matcher alone: ``history.formats.read_export`` and ``history.match.Catalogue.match_many``
  in one Python process (what each executor task does for its files);
- ours, end to end: ``./spark-submit.sh import-history`` as the job runs it (Spark local, the
  catalogue from Mongo, the MERGE into Delta ``events``, the history messages on Kafka, the report).

Prints a table and one JSON line; the counts of the matcher and the job must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from conf.settings import load_settings
from connectors import mongo_io
from history.formats import read_export
from history.match import Catalogue, Track

T0 = 1_480_000_000  # late 2016: ten years of listening up to now
ACCENTED = ("Sigur Rós", "Beyoncé", "Mötley Crüe", "Björk", "Café Tacvba", "Zoë Keating")


def catalogue_docs(n: int) -> list[dict]:
    """Mongo ``tracks`` as ingest writes them: ``n`` tracks, 10 an artist, a recording MBID on every third."""
    docs = []
    for i in range(1, n + 1):
        artist = f"{ACCENTED[i % len(ACCENTED)]} {i // 10}"
        mbid = str(uuid.UUID(int=i)) if i % 3 == 0 else None
        docs.append({"_id": i, "title": f"Song {i} of the Night", "artist_name": artist,
                     "album_title": f"Album {i // 100}", "genre_top": "Rock", "recording_mbid": mbid})  # fmt: skip
    return docs


def write_export(path: Path, listens: int, tracks: int, seed: int = 7) -> None:
    """A Last.fm 8-column CSV: a fifth by MBID, half by a variant of the name, the rest not in the library."""
    rng = np.random.default_rng(seed)
    ids = rng.zipf(1.3, listens) % tracks + 1  # a few favourites played often, a long tail
    roll = rng.random(listens)
    at = np.sort(rng.integers(T0, T0 + 10 * 365 * 86400, listens))
    with path.open("w", encoding="utf-8") as out:
        out.write("uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n")
        for t, r, i in zip(at.tolist(), roll.tolist(), ids.tolist(), strict=True):
            artist, title, mbid = f"{ACCENTED[i % len(ACCENTED)]} {i // 10}", f"Song {i} of the Night", ""
            if r < 0.2 and i % 3 == 0:
                mbid, title = str(uuid.UUID(int=i)), "renamed"
            elif r < 0.75:
                variant = i % 4
                title = [title.upper(), f"{title} - 2011 Remaster", f"{title} (feat. Guest {i % 7})", title][variant]
                artist = artist.replace("ó", "o").replace("é", "e") if variant == 3 else artist
            else:
                artist = f"Elsewhere {i % 5000}"
            out.write(f'{t},x,"{artist}",,Album {i // 100},,"{title}",{mbid}\n')


def baseline(path: Path, docs: list[dict]) -> tuple[float, int]:
    """A plain pandas merge: lower-cased, trimmed artist and title, and the MBID; (seconds, matched)."""
    started = time.monotonic()
    listens = pd.read_csv(path, dtype=str, keep_default_na=False)
    cat = pd.DataFrame(docs).rename(columns={"_id": "track_id"})
    for frame, a, t in ((listens, "artist", "track"), (cat, "artist_name", "title")):
        frame["key_a"], frame["key_t"] = frame[a].str.lower().str.strip(), frame[t].str.lower().str.strip()
    by_name = listens.merge(cat[["key_a", "key_t", "track_id"]].drop_duplicates(["key_a", "key_t"]),
                            on=["key_a", "key_t"], how="left")  # fmt: skip
    by_mbid = listens.merge(cat[["recording_mbid", "track_id"]].dropna(), left_on="track_mbid",
                            right_on="recording_mbid", how="left")  # fmt: skip
    matched = int((by_mbid["track_id"].notna().to_numpy() | by_name["track_id"].notna().to_numpy()).sum())
    return time.monotonic() - started, matched


def matcher(path: Path, docs: list[dict]) -> tuple[float, int, int]:
    """Ours in one process: parse and match every listen; (seconds, listens, matched)."""
    started = time.monotonic()
    catalogue = Catalogue(Track(d["_id"], d["artist_name"], d["title"], d["album_title"], d["recording_mbid"] or "")
                          for d in docs)  # fmt: skip
    listens, problems = read_export(path.name, path.read_bytes(), fmt="lastfm-csv")
    assert not problems, problems[:3]
    matched = sum(m is not None for m in catalogue.match_many(listens))
    return time.monotonic() - started, len(listens), matched


def end_to_end(path: Path, docs: list[dict], work: Path) -> tuple[float, dict]:
    """The import job, in this process as the launcher runs it; (seconds, its report in Mongo)."""
    from spark_jobs import import_history

    env = {**os.environ, "MONGO_DATABASE": "earshot_bench_history", "EARSHOT_LAKE_ROOT": str(work / "lake"),
           "EARSHOT__KAFKA__LISTENS_TOPIC": f"listens-bench-history-{work.name}"}  # fmt: skip
    settings = load_settings(env)
    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)
        mongo_io.database(client, settings)["tracks"].insert_many(docs)
    parser = argparse.ArgumentParser()
    import_history.add_arguments(parser)
    try:
        started = time.monotonic()
        import_history.main(settings, parser.parse_args(["--user", "bench", str(path)]))
        seconds = time.monotonic() - started
        with mongo_io.connect(settings) as client:
            (report,) = mongo_io.database(client, settings)["history_imports"].find({"user_id": "bench"})
    finally:
        with mongo_io.connect(settings) as client:
            client.drop_database(settings.mongo.database)
    return seconds, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listens", type=int, default=1_000_000)
    parser.add_argument("--tracks", type=int, default=106_574)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="earshot-bench-history-"))
    try:
        docs = catalogue_docs(args.tracks)
        export = work / "scrobbles.csv"
        write_export(export, args.listens, args.tracks)
        mb = round(export.stat().st_size / 1e6, 1)
        base_s, base_matched = baseline(export, docs)
        match_s, listens, matched = matcher(export, docs)
        job_s, report = end_to_end(export, docs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert report["listens"] == listens and report["matched"] == matched, (report, listens, matched)
    rows = [("baseline: pandas merge (lower-case names, MBID)", base_s, base_matched),
            ("ours: read and match, one process", match_s, matched),
            ("ours: import-history end to end", job_s, report["matched"])]  # fmt: skip
    print(f"\nImport of {listens:,} listens (a {mb} MB Last.fm CSV) against {args.tracks:,} tracks")
    print(f"{'row':<50}{'seconds':>9}{'matched':>10}{'listens/s':>11}")
    for name, seconds, n in rows:
        print(f"{name:<50}{seconds:>9.1f}{n:>10,}{listens / seconds:>11,.0f}")
    print(f"end to end: {report['events_added']:,} events added, {report['taste_listens']:,} listens sent to "
          f"the live taste in {report['taste_messages']} messages; matched by {report['matched_by']}\n")  # fmt: skip
    print(json.dumps({"listens": listens, "tracks": args.tracks, "export_mb": mb,
                      "baseline": {"seconds": round(base_s, 2), "matched": base_matched},
                      "matcher": {"seconds": round(match_s, 2), "matched": matched},
                      "job": {"seconds": round(job_s, 2), "matched": report["matched"],
                              "matched_by": report["matched_by"], "events_added": report["events_added"],
                              "taste_messages": report["taste_messages"]}}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
