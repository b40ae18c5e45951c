"""The real dashboard in headless Chromium: search, play, like, and watch "For you" change.

Runs the Streamlit server as a subprocess on the real Kafka broker, FerretDB and a
running stream (in this test's Spark session), over a synthetic index whose
tracks all point at one small WAV file in the test's library. Screenshots of
every page go to ``$EARSHOT_SCREENSHOTS`` (default: the test's temporary folder).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conf.settings import REPO_ROOT, load_settings
from connectors import mongo_io
from index.reader import Index
from tests.integration.streaming import publish_synthetic_index, stream_environ

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.mongo, pytest.mark.spark]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_tone(path: Path, seconds: float = 3.0, rate: int = 22050) -> None:
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, 0.2 * np.sin(2 * np.pi * 440 * t), rate)


@pytest.fixture(scope="module")
def dashboard(stack, spark, tmp_path_factory):
    if CHROMIUM is None:
        pytest.fail("no chromium on this machine: run services/setup.sh --browser")
    from spark_jobs import stream

    root = tmp_path_factory.mktemp("ui")
    library = root / "library"
    (library / "000").mkdir(parents=True)
    tone = library / "000" / "000001.wav"
    write_tone(tone)
    env = stream_environ(root, "ui", EARSHOT_LIBRARY_ROOT=str(library))
    settings = load_settings(env)
    publish_synthetic_index(settings)
    index = Index.open(settings.paths.index_root)
    client = mongo_io.connect(settings)
    db = mongo_io.database(client, settings)
    mongo_io.upsert_many(
        db,
        "tracks",
        [
            {
                "_id": t.track_id,
                "title": t.title,
                "artist_name": t.artist,
                "genre_top": t.genre,
                "audio_path": str(tone),
            }
            for t in index.catalogue.tracks.values()
        ],
    )
    queries, sink = stream.start(spark, settings)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "dashboard" / "app.py"),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        env=env,
        stdout=(root / "streamlit.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        shots = Path(os.environ.get("EARSHOT_SCREENSHOTS") or root / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        yield f"http://127.0.0.1:{port}", shots, settings
    finally:
        server.terminate()
        server.wait(timeout=30)
        stream.stop(spark, queries, sink)
        client.drop_database(settings.mongo.database)
        client.close()


def pick_option(page, box: str, text: str, tries: int = 3) -> None:
    """Open the selectbox labelled ``box`` and choose its first option with ``text``. Streamlit may rerun
    the page (the search's results arriving) just as the list opens, which closes it again: on a busy
    machine, open it once more rather than wait on a list that is gone."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        page.locator('[data-testid="stSelectbox"]').filter(has_text=box).click()
        option = page.get_by_role("option").filter(has_text=text).first
        try:
            option.wait_for(state="visible", timeout=10_000)
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            continue
        option.click()
        return


def launch(pw):
    """Debian's Chromium, headless, allowed to start audio without a click."""
    return pw.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
    )


def test_search_play_like_and_see_for_you_change(dashboard):
    from playwright.sync_api import expect, sync_playwright

    url, shots, _ = dashboard
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        expect(page.get_by_text("no recommendations yet")).to_be_visible(timeout=60_000)

        search = page.get_by_label("Search title, artist or genre")
        search.fill("Jazz")
        search.press("Enter")
        expect(page.get_by_text(re.compile(r"\d+ matches of \d+ tracks"))).to_contain_text("80 matches", timeout=20_000)
        pick_option(page, "Track", "Jazz")
        page.get_by_role("button", name="Play", exact=True).click()
        expect(page.locator("audio")).to_have_count(1, timeout=20_000)
        expect(page.get_by_text(re.compile("Now playing: Jazz song"))).to_be_visible()

        page.get_by_role("button", name="Like", exact=True).click()
        fresh = page.get_by_text(re.compile(r"updated \d+\.\d s after your (like|play)"))
        expect(fresh).to_be_visible(timeout=120_000)
        expect(page.get_by_text(re.compile(r"updated \d+\.\d s after your like"))).to_be_visible(timeout=60_000)
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(shots / "player.png"), full_page=True)

        for path, title in (("monitoring", "Pipeline"), ("map", "Library map"), ("analytics", "Listening")):
            page.goto(f"{url}/{path}")
            expect(page.get_by_role("heading", name=re.compile(title))).to_be_visible(timeout=60_000)
            if path == "analytics":  # the archive writes every 2 s in this test
                deadline = time.monotonic() + 60
                while page.get_by_text("events", exact=True).count() == 0 and time.monotonic() < deadline:
                    time.sleep(2)
                    page.reload()
            time.sleep(2)
            assert page.get_by_text("Traceback").count() == 0, f"the {path} page failed"
            page.screenshot(path=str(shots / f"{path}.png"), full_page=True)
        browser.close()
    assert {p.name for p in shots.glob("*.png")} >= {"player.png", "monitoring.png", "map.png", "analytics.png"}


def listens(settings, user: str) -> list[dict]:
    """Every event on this test's listens topic from ``user``, oldest first."""
    import json

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        settings.kafka.listens_topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        events = [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()
    return sorted((e for e in events if e.get("user_id") == user), key=lambda e: e["ts"])


def set_slider(page, label: str, steps: int) -> None:
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text=label).get_by_role("slider")
    thumb.click()
    thumb.press("Home")
    for _ in range(steps):
        thumb.press("ArrowRight")


def test_a_mood_playlist_is_saved_played_shared_and_counted(dashboard):
    """#18's path: a listener makes a playlist from a mood, saves it, plays it through (events on Kafka),
    shares it; another listener opens the link and plays it; the analytics page counts the share."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    url, shots, settings = dashboard
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/playlists")
        expect(page.get_by_role("heading", name="Playlists", exact=True)).to_be_visible(timeout=60_000)
        page.get_by_label("New listener").fill("alice")
        page.get_by_label("New listener").press("Enter")
        expect(page.locator('[data-testid="stSelectbox"]').filter(has_text="Listening as")).to_contain_text("alice")
        set_slider(page, "Energy", 8)  # -1 + 8 x 0.25: the loudest
        expect(page.locator('[data-testid="stSlider"]').filter(has_text="Energy")).to_contain_text("1.00")
        page.get_by_role("button", name="Generate").click()
        expect(page.get_by_label("Playlist name")).to_be_visible(timeout=30_000)
        page.get_by_label("Playlist name").fill("Loud morning")
        page.get_by_role("button", name="Save playlist").click()
        opened = page.locator('[data-testid="stSelectbox"]').filter(has_text="Open playlist")
        expect(opened).to_contain_text("Loud morning (15 tracks)", timeout=30_000)

        page.get_by_role("button", name="Play playlist").click()
        expect(page.get_by_text(re.compile(r"Playing 'Loud morning', 1 of 15"))).to_be_visible(timeout=30_000)
        expect(page.locator("audio")).to_have_count(1)
        # Every track here is the same 3 s tone: the page moves on by itself when it has played out.
        expect(page.get_by_text(re.compile(r"Playing 'Loud morning', 2 of 15"))).to_be_visible(timeout=30_000)
        page.get_by_role("button", name="Share playlist").click()
        link = page.locator("code").filter(has_text="/playlists?playlist=")
        expect(link).to_be_visible(timeout=30_000)
        shared_url = link.inner_text().strip()
        assert shared_url.startswith(url + "/playlists?playlist=") and "/" not in shared_url.split("=", 1)[1]
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(shots / "playlists.png"), full_page=True)
        page.get_by_role("button", name="Stop playing").click()

        pid = shared_url.split("=", 1)[1]
        sent = listens(settings, "alice")
        mine = [e for e in sent if e.get("context") == f"playlist:{pid}"]
        assert [e["type"] for e in mine[:3]] == ["play", "complete", "play"], sent
        assert mine[0]["track_id"] != mine[2]["track_id"] and mine[1]["position_ms"] >= 2500
        assert [e["shared"] for e in sent if e["type"] == "share"] == [f"playlist:{pid}"]

        other = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
        other.goto(shared_url)
        expect(other.get_by_text("Shared with you: 'Loud morning' by alice")).to_be_visible(timeout=60_000)
        other.get_by_label("New listener").fill("bob")
        other.get_by_label("New listener").press("Enter")
        expect(other.locator('[data-testid="stSelectbox"]').filter(has_text="Listening as")).to_contain_text("bob")
        other.get_by_role("button", name="Play shared playlist").click()
        expect(other.get_by_text(re.compile(r"Playing 'Loud morning', 1 of 15"))).to_be_visible(timeout=30_000)
        deadline = time.monotonic() + 30
        while not listens(settings, "bob") and time.monotonic() < deadline:
            time.sleep(1)
        assert [(e["type"], e["context"]) for e in listens(settings, "bob")][:1] == [("play", f"playlist:{pid}")]

        shares = page.locator('[data-testid="stMetric"]').filter(has_text="shares")
        deadline = time.monotonic() + 90  # the archive writes every 2 s in this test
        while True:
            page.goto(f"{url}/analytics")
            expect(page.get_by_role("heading", name="Listening", exact=True)).to_be_visible(timeout=60_000)
            try:
                shares.wait_for(timeout=10_000)
            except PlaywrightTimeout:
                pass  # no events archived yet: the page says so instead
            if (shares.count() and shares.inner_text().split()[-1] == "1") or time.monotonic() > deadline:
                break
            time.sleep(2)
        page.screenshot(path=str(shots / "analytics.png"), full_page=True)
        said = shares.inner_text() if shares.count() else page.locator("body").inner_text()[:3000]
        assert shares.count() and said.split()[-1] == "1", said
        expect(page.get_by_text("top tracks")).to_be_visible()
        time.sleep(2)
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(shots / "analytics.png"), full_page=True)
        browser.close()
