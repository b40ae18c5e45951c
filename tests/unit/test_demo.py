"""The demo's decision to skip an unchanged pipeline, and what it starts in the background."""

from __future__ import annotations

import argparse
import os

import pytest

from conf.settings import load_settings
from index.local import build_version
from index.synthetic import COLUMNS, synthetic_catalogue
from spark_jobs import demo

pytestmark = pytest.mark.unit


def test_an_unchanged_library_with_a_published_index_skips_the_pipeline(tmp_path):
    library = tmp_path / "library"
    (library / "000").mkdir(parents=True)
    song = library / "000" / "000002.mp3"
    song.write_bytes(b"abc")
    settings = load_settings({"EARSHOT_LIBRARY_ROOT": str(library), "EARSHOT_INDEX_ROOT": str(tmp_path / "index")})
    stamp = tmp_path / "stamp"
    stamp.write_text(demo.library_fingerprint(settings))
    assert not demo.pipeline_is_current(settings, stamp), "no index is published yet"
    ids, raw, frame = synthetic_catalogue(genres=2, per_genre=8, artists_per_genre=2)
    build_version(
        tmp_path / "index", ids, raw, COLUMNS, feature_version="t", catalogue=frame, shards=1, pca_components=4
    )
    assert demo.pipeline_is_current(settings, stamp)
    os.utime(song, ns=(1, 1))
    assert not demo.pipeline_is_current(settings, stamp), "a changed file runs the pipeline again"


def test_the_background_is_stream_simulator_and_dashboard_on_loopback():
    args = argparse.Namespace(master="local[2]", port=8600, rate=2.0)
    parts = dict(demo.background(load_settings({}), args))
    assert list(parts) == ["stream", "simulate", "dashboard"]
    assert parts["dashboard"][parts["dashboard"].index("--server.address") + 1] == "127.0.0.1"
    assert "8600" in parts["dashboard"]


def test_sigterm_stops_the_demo_and_everything_it_started(tmp_path):
    """Regression: SIGTERM ended the demo at once and left its background processes running."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "demo_like.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "from spark_jobs import demo\n"
        "demo.stop_on_signals()\n"
        "started = [(f'child{i}', subprocess.Popen(['sleep', '300'], start_new_session=True)) for i in range(2)]\n"
        "print(' '.join(str(p.pid) for _, p in started), flush=True)\n"
        "try:\n"
        "    while True:\n"
        "        time.sleep(0.2)\n"
        "except KeyboardInterrupt:\n"
        "    print('stopping', flush=True)\n"
        "finally:\n"
        "    demo.stop_background(started)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    children = [int(pid) for pid in proc.stdout.readline().split()]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopping" in out and "stopped child0" in out
    time.sleep(0.2)
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
