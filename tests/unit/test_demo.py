"""The demo's decision to skip an unchanged pipeline, and what it starts in the background."""

from __future__ import annotations

import argparse
import os

import pytest

from conf.settings import QUICK_JIT, load_settings
from index.local import build_version
from index.synthetic import COLUMNS, synthetic_catalogue
from tools import demo

pytestmark = pytest.mark.unit


def test_an_unchanged_library_with_a_published_index_skips_the_pipeline(tmp_path):
    library = tmp_path / "library"
    (library / "000").mkdir(parents=True)
    song = library / "000" / "000002.mp3"
    song.write_bytes(b"abc")
    settings = load_settings({"EARSHOT_LIBRARY_ROOT": str(library), "EARSHOT_INDEX_ROOT": str(tmp_path / "index")})
    stamp = tmp_path / "stamp"
    stamp.write_text(demo.pipeline_stamp(settings))
    assert not demo.pipeline_is_current(settings, stamp), "no index is published yet"
    ids, raw, frame = synthetic_catalogue(genres=2, per_genre=8, artists_per_genre=2)
    build_version(
        tmp_path / "index", ids, raw, COLUMNS, feature_version="t", catalogue=frame, shards=1, pca_components=4
    )
    assert demo.pipeline_is_current(settings, stamp)
    where = {"EARSHOT_LIBRARY_ROOT": str(library), "EARSHOT_INDEX_ROOT": str(tmp_path / "index")}
    other_space = load_settings({**where, "EARSHOT__INDEX__SPACE": "musicnn-msd"})
    assert not demo.pipeline_is_current(other_space, stamp), "another index space runs the pipeline again"
    os.utime(song, ns=(1, 1))
    assert not demo.pipeline_is_current(settings, stamp), "a changed file runs the pipeline again"
    with open(os.path.join(os.fsencode(library), b"caf\xe9.mp3"), "wb") as latin:  # a name that is not UTF-8
        latin.write(b"x")
    assert demo.pipeline_stamp(settings) != demo.pipeline_stamp(other_space), "regression: it failed the demo"


def test_the_background_is_stream_simulator_api_server_and_dashboard_on_loopback():
    args = argparse.Namespace(master="local[2]", port=8600, rate=2.0)
    parts = dict(demo.background(load_settings({}), args))
    assert list(parts) == ["stream", "simulate", "serve", "dashboard"]
    assert parts["serve"][-1] == "serve" and load_settings({}).api.host == "127.0.0.1"
    assert parts["dashboard"][parts["dashboard"].index("--server.address") + 1] == "127.0.0.1"
    assert "8600" in parts["dashboard"]


def test_sigterm_stops_the_demo_and_everything_it_started(tmp_path):
    """Regression: SIGTERM ended the demo at once and left its background processes running (and, later, a signal
    that came while they were starting, before the demo's try, left them running too)."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "demo_like.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "from tools import demo\n"
        "demo.stop_on_signals()\n"
        "started = []\n"
        "try:  # as the demo does: from before the first start\n"
        "    for i in range(2):\n"
        "        started.append((f'child{i}', subprocess.Popen(['sleep', '300'], start_new_session=True)))\n"
        "    print(' '.join(str(p.pid) for _, p in started), flush=True)\n"
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
    for pid in children:  # gone: killed, and reaped by the demo (a loaded machine may take a moment)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_folder_of_music_gets_its_own_lake_index_checkpoints_and_database(tmp_path, monkeypatch):
    music = tmp_path / "My Music"
    music.mkdir()
    settings = load_settings({"EARSHOT_STATE_ROOT": str(tmp_path / "state")})
    args = argparse.Namespace(music=str(music), synthetic=False)
    folder = demo.choose_music(args)
    assert folder == music.resolve()
    env = demo.music_environment(settings, folder)
    assert env["EARSHOT_LIBRARY_ROOT"] == str(music.resolve())
    homes = {env[k].rsplit("/", 1)[0] for k in ("EARSHOT_LAKE_ROOT", "EARSHOT_INDEX_ROOT", "EARSHOT_CHECKPOINT_ROOT")}
    assert len(homes) == 1 and homes.pop().startswith(str(tmp_path / "state" / "music-"))
    assert env["MONGO_DATABASE"].startswith(settings.mongo.database + "_music_")
    assert demo.music_environment(settings, folder) == env, "the same folder reuses what it built"
    other = tmp_path / "Other"
    other.mkdir()
    assert demo.music_environment(settings, other)["MONGO_DATABASE"] != env["MONGO_DATABASE"]
    assert [job for job, _ in demo.steps(args, folder)] == ["ingest", "extract", "build-index"]
    assert demo.steps(args, folder)[0][1] == ["--folder", str(folder)]
    # One pipeline application: each step one word, read back to the same jobs and options (a folder with a space).
    from spark_jobs import pipeline

    spaced = tmp_path / "My Music"
    command = demo.pipeline_command("local[2]", demo.steps(args, spaced))
    assert command[1:4] == ["--master", "local[2]", "pipeline"]
    planned = pipeline.plan(command[4:])
    assert [name for name, _, _ in planned] == ["ingest", "extract", "build-index"]
    assert planned[0][2].folder == str(spaced)


def test_the_demo_builds_real_music_first_and_falls_back_to_the_synthetic_library_saying_why(
    tmp_path, monkeypatch, capsys
):
    from services import real_music

    monkeypatch.setattr(demo, "REAL_MUSIC", tmp_path / "real-music")
    args = argparse.Namespace(music=None, synthetic=False, tracks=300)

    def offline(dest):
        raise real_music.Unavailable("apt-get download failed (exit 100): is a Debian package mirror reachable?")

    assert demo.choose_music(args, build=offline) is None
    out = capsys.readouterr().out
    assert "building the real-music library" in out and "no real music (apt-get download failed" in out
    assert "playing the synthetic sample library instead" in out
    assert demo.steps(args)[0] == ("sample-library", ["--tracks", "300"])
    built: list = []

    def build(dest):
        built.append(dest)
        dest.mkdir()
        (dest / ".complete").write_text("3\n")
        return 3

    assert demo.choose_music(args, build=build) == tmp_path / "real-music" and built == [tmp_path / "real-music"]
    assert "building the real-music library" in capsys.readouterr().out
    assert demo.choose_music(args) == tmp_path / "real-music", "built once: the library is complete"
    assert capsys.readouterr().out == ""
    assert demo.choose_music(argparse.Namespace(music=None, synthetic=True)) is None
    with pytest.raises(demo.EarshotError, match="not a folder"):
        demo.choose_music(argparse.Namespace(music=str(tmp_path / "nowhere"), synthetic=False))


def test_the_real_music_library_says_why_it_cannot_be_built(tmp_path, monkeypatch):
    from services import real_music

    monkeypatch.setattr(real_music.shutil, "which", lambda name: None)
    with pytest.raises(real_music.Unavailable, match="needs Debian's apt-get and dpkg-deb"):
        real_music.ensure(tmp_path / "lib")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / ".complete").write_text("0\n")
    (tmp_path / "done" / "a.ogg").write_bytes(b"")
    assert real_music.ensure(tmp_path / "done") == 1, "a complete library is not built again"


def test_the_batch_steps_run_with_the_quick_jit_unless_the_settings_name_jvm_options():
    assert demo.batch_environ(load_settings({}))["EARSHOT__SPARK__JVM_OPTIONS"] == QUICK_JIT
    own = load_settings({"EARSHOT__SPARK__JVM_OPTIONS": "-Xss4m"})
    assert demo.batch_environ(own)["EARSHOT__SPARK__JVM_OPTIONS"] == "-Xss4m"


@pytest.mark.parametrize("were_up", [False, True])
def test_no_serve_stops_a_stack_the_demo_started_and_leaves_one_it_found(tmp_path, monkeypatch, were_up):
    """Regression: ``demo --no-serve`` returned after the pipeline and left the broker and FerretDB it had
    started running in the background."""
    settings = load_settings({"EARSHOT_LAKE_ROOT": str(tmp_path / "lake")})
    (tmp_path / "lake").mkdir()
    calls: list[str] = []
    monkeypatch.setattr(demo, "stop_on_signals", lambda: None)  # the test process keeps its own handlers
    monkeypatch.setattr(demo, "choose_music", lambda args: None)
    monkeypatch.setattr(demo, "pipeline_is_current", lambda settings, stamp: True)
    monkeypatch.setattr(demo.stack, "kafka_healthy", lambda settings: were_up)
    monkeypatch.setattr(demo.stack, "mongo_healthy", lambda settings: were_up)
    monkeypatch.setattr(demo.stack, "up", lambda settings: calls.append("up") or [])
    monkeypatch.setattr(demo.stack, "down", lambda settings: calls.append("down") or [])
    args = argparse.Namespace(no_serve=True, rebuild=False, master="local[2]")
    assert demo.main(settings, args) == 0
    assert calls == (["up"] if were_up else ["up", "down"])
