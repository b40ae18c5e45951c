# ruff: noqa: T201 - a command-line tool: it prints its table
"""API benchmark: the OpenSubsonic server under a player's calls, at FMA large's catalogue size.

    python -m bench.api                # 106,574 tracks (FMA large), 10 s per call
    python -m bench.api --tracks 5000  # a quick look

Writes a synthetic catalogue of ``--tracks`` songs (161 genres, one WAV file of
30 s for the ``stream`` rows) into a scratch Mongo database and builds its index
as ``build-index`` would (the configured shards, probe cap and exact scoring),
starts ``./spark-submit.sh serve`` on it, then drives each call for ``--seconds``
from ``--clients`` keep-alive connections: requests/s and p50/p99 latency of
``ping`` (the floor: authentication and the encoder, no work), ``getSong``,
``search3`` with an empty query paging through the whole library (500 songs a
page, as a full sync does), ``getSimilarSongs2``, ``getSonicSimilarTracks``, and
the first byte of ``stream``, beside the same file's first byte from Python's
own static file server (the baseline). The clients run on the same 2 cores as
the server. Prints a table, then one JSON line. The scratch database is dropped.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from conf.settings import REPO_ROOT, load_settings
from connectors import mongo_io
from index.local import build_version
from index.synthetic import COLUMNS, synthetic_catalogue

TARGETS = {"getSong_rps": 1000.0, "getSimilarSongs2_p99_ms": 50.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drive(port: int, paths, *, seconds: float, clients: int, first_byte: bool = False) -> dict:
    """Send GETs from ``clients`` threads for ``seconds``; requests/s and latency percentiles (ms)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < stop:
            path = paths(rng)
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            if first_byte:
                response.read(1)
                mine.append(time.perf_counter() - started)
                response.read()
            else:
                body = response.read()
                mine.append(time.perf_counter() - started)
                if response.status != 200 or b'"status":"ok"' not in body[:400] and b"<" not in body[:1]:
                    with lock:
                        errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    ms = np.asarray(latencies) * 1000
    return {"requests": len(ms), "rps": round(len(ms) / took, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "errors": errors[0]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=106_574)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="earshot-bench-api-"))
    library = root / "library"
    library.mkdir()
    database = f"earshot_bench_api_{os.getpid()}"
    env = {**os.environ, "MONGO_DATABASE": database, "EARSHOT_INDEX_ROOT": str(root / "index"),
           "EARSHOT_LIBRARY_ROOT": str(library)}  # fmt: skip
    settings = load_settings(env)
    per_genre = max(1, args.tracks // 161)
    ids, raw, frame = synthetic_catalogue(genres=161, per_genre=per_genre, artists_per_genre=max(1, per_genre // 10))
    started = time.monotonic()
    cfg = settings.index
    build_version(Path(settings.paths.index_root), ids, raw, COLUMNS, feature_version="fma-v1", catalogue=frame,
                  shards=cfg.shards, probe=cfg.probe, exact_tracks=cfg.exact_tracks, n_trees=cfg.n_trees,
                  search_k=cfg.search_k, pca_components=cfg.pca_components, seed=cfg.seed)  # fmt: skip
    index_s = time.monotonic() - started
    audio = library / "track.wav"
    import soundfile as sf

    t = np.linspace(0, 30, 30 * 22050, endpoint=False)
    sf.write(audio, 0.2 * np.sin(2 * np.pi * 440 * t), 22050)
    client = mongo_io.connect(settings)
    db = mongo_io.database(client, settings)
    started = time.monotonic()
    docs = [{"_id": int(r.track_id), "title": r.title, "artist_name": r.artist_name, "genre_top": r.genre_top,
             "album_title": f"{r.artist_name} album {int(r.track_id) % 7}", "duration_s": 30.0,
             "track_number": int(r.track_id) % 12 + 1, "year": 1990 + int(r.track_id) % 30,
             "audio_path": str(audio)} for r in frame.itertuples(index=False)]  # fmt: skip
    mongo_io.upsert_many(db, "tracks", docs, in_flight=2)
    load_s = time.monotonic() - started
    user = "bench"
    from tools.user import fresh_credentials

    _, api_key = fresh_credentials(settings, user)
    port, static_port = free_port(), free_port()
    log = root / "serve.log"
    server = subprocess.Popen([str(REPO_ROOT / "spark-submit.sh"), "serve", "--port", str(port)], env=env,
                              stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    static = ThreadingHTTPServer(("127.0.0.1", static_port), partial(QuietHandler, directory=str(library)))
    threading.Thread(target=static.serve_forever, daemon=True).start()
    auth = urllib.parse.urlencode({"apiKey": api_key, "v": "1.16.1", "c": "bench", "f": "json"})
    rows: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + 120
        while not _answers(port, auth):
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"bench.api: the server did not start (log: {log})")
            time.sleep(0.5)
        id_list = [int(i) for i in ids]
        # The first call loads the catalogue into the server's memory: not part of any row.
        _answers(port, auth, "getSong", f"&id={id_list[0]}")
        pages = max(1, len(id_list) // 500)
        calls = {
            "ping": lambda rng: f"/rest/ping?{auth}",
            "getSong": lambda rng: f"/rest/getSong?{auth}&id={rng.choice(id_list)}",
            "search3 (empty, 500/page)": lambda rng: f"/rest/search3?{auth}&query=&artistCount=0&albumCount=0"
            f"&songCount=500&songOffset={rng.randrange(pages) * 500}",
            "getSimilarSongs2": lambda rng: f"/rest/getSimilarSongs2?{auth}&id={rng.choice(id_list)}&count=50",
            "getSonicSimilarTracks": lambda rng: f"/rest/getSonicSimilarTracks?{auth}&id={rng.choice(id_list)}",
        }
        for name, paths in calls.items():
            rows[name] = drive(port, paths, seconds=args.seconds, clients=args.clients)
        rows["stream (first byte)"] = drive(port, lambda rng: f"/rest/stream?{auth}&id={rng.choice(id_list)}",
                                            seconds=args.seconds, clients=args.clients, first_byte=True)  # fmt: skip
        rows["baseline: static file server (first byte)"] = drive(
            static_port, lambda rng: "/track.wav", seconds=args.seconds, clients=args.clients, first_byte=True
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        static.shutdown()
        client.drop_database(database)
        client.close()
    print(f"\nOpenSubsonic server, {len(ids):,} tracks (index built in {index_s:.0f} s, catalogue written in "
          f"{load_s:.0f} s), {args.clients} clients on the same cores, {args.seconds:.0f} s per call")  # fmt: skip
    print(f"{'call':<44}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, r in rows.items():
        print(f"{name:<44}{r['rps']:>10.1f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8}")
    meets = {
        "getSong_rps": rows["getSong"]["rps"] >= TARGETS["getSong_rps"],
        "getSimilarSongs2_p99_ms": rows["getSimilarSongs2"]["p99_ms"] <= TARGETS["getSimilarSongs2_p99_ms"],
    }
    figures = {"tracks": len(ids), "clients": args.clients, "rows": rows, "targets": TARGETS, "meets": meets}
    print(
        f"targets: getSong >= {TARGETS['getSong_rps']:.0f}/s: {meets['getSong_rps']}; getSimilarSongs2 "
        f"p99 <= {TARGETS['getSimilarSongs2_p99_ms']:.0f} ms: {meets['getSimilarSongs2_p99_ms']}\n"
    )
    print(json.dumps(figures))
    return 0


class QuietHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def _answers(port: int, auth: str, call: str = "ping", extra: str = "") -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", f"/rest/{call}?{auth}{extra}")
        ok = b'"status":"ok"' in conn.getresponse().read()
        conn.close()
        return ok
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
