"""Dashboard pages under Streamlit's own app tests, and its pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from dashboard import data

pytestmark = pytest.mark.unit
APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = ("player", "playlists", "monitoring", "library_map", "analytics")


@pytest.fixture()
def nothing_running(monkeypatch, tmp_path):
    """Settings that point at services nobody runs and an empty lake and index."""
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:1/")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("EARSHOT_INDEX_ROOT", str(tmp_path / "index"))
    monkeypatch.setenv("EARSHOT_LAKE_ROOT", str(tmp_path / "lake"))


def page_script(name: str) -> None:
    """Run one page function as a Streamlit script (AppTest runs this function's source)."""
    from dashboard import pages

    getattr(pages, name)()


def run_page(name: str):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(page_script, args=(name,), default_timeout=60)
    app.run()
    return app


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_plainly_what_is_missing_instead_of_crashing(nothing_running, page):
    app = run_page(page)
    assert not app.exception, app.exception
    said = " ".join(m.value for m in [*app.error, *app.warning, *app.info, *app.caption])
    assert any(word in said for word in ("does not answer", "build-index", "no Delta table", "no index")), said


def test_the_app_file_builds_its_navigation(nothing_running):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value.endswith("Earshot")


class FakeTracks:
    """Just enough of a collection for the audio lookup: ``find_one`` by ``_id``."""

    def __init__(self, docs: dict[int, dict]):
        self.docs = docs

    def find_one(self, query: dict, _projection=None):
        return self.docs.get(query["_id"])


def test_audio_is_served_by_catalogue_id_only(tmp_path, monkeypatch):
    library = tmp_path / "library"
    (library / "000").mkdir(parents=True)
    song = library / "000" / "000002.wav"
    song.write_bytes(b"RIFF....WAVE")
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"no")
    monkeypatch.setenv("EARSHOT_LIBRARY_ROOT", str(library))
    s = data.settings()
    db = {"tracks": FakeTracks({2: {"audio_path": str(song)}, 3: {"audio_path": str(library / ".." / "secret.wav")}})}
    assert data.audio_for(db, s, 2) == (b"RIFF....WAVE", "audio/wav")
    for bad in ("../../etc/passwd", "/etc/passwd", str(song), "2/../3", 99, 3, True, 2.0):
        with pytest.raises(data.AudioRefused):
            data.audio_for(db, s, bad)


def test_search_matches_every_word_in_title_artist_or_genre():
    frame = pd.DataFrame(
        {
            "track_id": [1, 2, 3],
            "title": ["Blue Moon", "Red Sun", "Blue Sky"],
            "artist": ["A", "B", "C"],
            "genre": ["Jazz", "Rock", "Rock"],
        }
    )
    assert data.search(frame, "blue rock")["track_id"].tolist() == [3]
    assert data.search(frame, "")["track_id"].tolist() == [1, 2, 3]
    accented = frame.assign(artist=["Björk", "Sigur Rós", "Motörhead"])
    assert data.search(accented, "bjork")["track_id"].tolist() == [1]
    assert data.search(accented, "ROS rock")["track_id"].tolist() == [2]
    assert data.search(accented, "motörhead")["track_id"].tolist() == [3]


def test_freshness_says_how_long_after_the_action_it_was_updated():
    written = datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC)
    doc = {
        "written_at": written,
        "trigger_event_ms": int((written - timedelta(seconds=0.8)).timestamp() * 1000),
        "trigger_type": "like",
        "source": "taste",
        "index_version": "v1",
    }
    assert data.freshness_line(doc, now=written + timedelta(seconds=3)).startswith(
        "updated 0.8 s after your like · 3 s ago"
    )
    assert "no recommendations yet" in data.freshness_line(None)
    assert "after your history import" in data.freshness_line({**doc, "trigger_type": "history"})


def test_share_links_carry_ids_only():
    assert data.share_url("http://127.0.0.1:8501/player?x=1", "playlists", "playlist", "Ab_3") == (
        "http://127.0.0.1:8501/playlists?playlist=Ab_3"
    )
    assert data.share_url(None, "player", "track", 7) == "/player?track=7"
    assert data.share_url("http://h:1/a", "player", "radio", "a b&c") == "http://h:1/player?radio=a+b%26c"


def test_analytics_skip_rates_top_titles_finished_recommendations_and_taste():
    from dashboard.analytics import (
        recommendations_finished,
        skip_rate_by_hour,
        skip_rate_by_position,
        taste_over_time,
        top_by_title,
    )

    at = datetime(2026, 1, 1, 9, tzinfo=UTC)
    rows = [  # (user, track, type, seconds after 9:00, position s, context)
        ("a", 1, "play", 0, 0, "for-you"),
        ("a", 1, "complete", 200, 200, "for-you"),
        ("a", 2, "play", 300, 0, "for-you"),
        ("a", 2, "skip", 305, 5, "for-you"),
        ("b", 1, "play", 3600, 0, "search"),
        ("b", 1, "skip", 3620, 20, "search"),
        ("b", 3, "play", 3700, 0, None),
        ("b", 3, "like", 3750, None, None),
        ("b", 3, "share", 3760, None, None),
    ]
    events = pd.DataFrame(
        [
            {
                "event_id": f"e{i}",
                "user_id": u,
                "track_id": t,
                "type": k,
                "ts": at + timedelta(seconds=s),
                "position_ms": None if p is None else p * 1000,
                "context": c,
                "genre": {1: "Jazz", 2: "Rock", 3: "Folk"}[t],
            }
            for i, (u, t, k, s, p, c) in enumerate(rows)
        ]
    )
    by_position = skip_rate_by_position(events)
    assert by_position["0-10 s"] == 1.0 and by_position["10-30 s"] == 1.0 and by_position["120-240 s"] == 0.0
    assert pd.isna(by_position["30-60 s"])
    by_hour = skip_rate_by_hour(events)
    assert by_hour[9] == 0.5 and by_hour[10] == 0.5 and by_hour[3] == 0.0 and len(by_hour) == 24
    assert recommendations_finished(events) == (2, 0.5)
    assert recommendations_finished(events.drop(columns="context")) == (0, None)

    class Catalogue:
        names = {1: ("Blue", "Ann"), 2: ("Red", "Bo"), 3: ("Green", "Ann")}

        def get(self, t):
            title, artist = self.names.get(t, (None, None))
            return type("T", (), {"title": title, "artist": artist})() if title else None

    tracks, artists = top_by_title(events, Catalogue())
    assert tracks.iloc[0][["title", "artist", "plays", "complete"]].tolist() == ["Blue", "Ann", 2, 1]
    assert artists.set_index("artist").loc["Ann", "plays"] == 3 and artists.iloc[0]["artist"] == "Ann"
    assert tracks.set_index("title").loc["Green", "share"] == 1
    taste = taste_over_time(events, "b")
    assert taste["Folk"].iloc[-1] == 0.3 + 3.0 + 1.5 and taste["Jazz"].iloc[-1] == 0.3 - 1.0
    assert taste_over_time(events, "nobody").empty


def test_moods_come_from_the_serving_store_when_the_index_space_has_no_such_features(tmp_path):
    import numpy as np

    from index.local import build_version
    from index.reader import Index
    from recommend.playlist import from_mood

    rng = np.random.default_rng(0)
    ids = np.arange(1, 41, dtype=np.int64)
    columns = [f"emb_{i}" for i in range(6)]  # an embedding space: no tempo, energy, ...
    frame = pd.DataFrame(
        {
            "track_id": ids,
            "title": [f"t{i}" for i in ids],
            "artist_name": [f"a{i % 7}" for i in ids],
            "genre_top": "Pop",
        }
    )
    index = Index(
        build_version(tmp_path, ids, rng.normal(size=(40, 6)), columns, feature_version="e", catalogue=frame, shards=1)
    )

    class Tracks:
        def find(self, query, projection):
            assert query == {"features": {"$exists": True}} and "features.energy" in projection
            docs = [{"_id": int(t), "features": {"tempo": 60.0 + t, "energy": float(t)}} for t in ids[:30]]
            return [*docs, {"_id": 999, "features": {"energy": 1.0}}]  # not in the index: left out by from_mood

    moods = data.mood_table({"tracks": Tracks()}, index)
    assert list(moods.columns) == ["track_id", "tempo", "energy", "brightness", "noisiness"] and len(moods) == 31
    assert moods["brightness"].isna().all()
    loud = from_mood(index, moods, {"energy": 1.0}, length=4)
    assert len(loud) == 4 and min(loud) >= 19  # from the 12 loudest (3 candidates a place): energy is the id here
    from dashboard import common

    cached = common.mood_table({"tracks": Tracks()}, index)
    assert cached.equals(moods) and common.mood_table({"tracks": None}, index) is cached  # once per index version


def test_an_uploaded_history_runs_the_import_job_and_shows_its_report(monkeypatch, tmp_path):
    """The upload is kept under the state root and handed to the launcher; its report (or its error) is shown."""
    from conf.settings import load_settings

    launcher = tmp_path / "spark-submit.sh"
    launcher.write_text('#!/bin/sh\necho "setup: ok"\necho "import-history: $3"\necho "read 3 lines of $4"\n'
                        '[ "$3" = "mallory" ] && { echo "JobInputError: nope" >&2; exit 2; }\nexit 0\n')  # fmt: skip
    launcher.chmod(0o755)
    monkeypatch.setattr(data, "ROOT", tmp_path)
    s = load_settings({"EARSHOT_STATE_ROOT": str(tmp_path / "state")})
    sent = data.import_history(s, "ana b", "../scrobbles.csv", b"uts,utc_time\n")
    kept = tmp_path / "state" / "uploads" / "ana_b" / "scrobbles.csv"
    assert sent.ok and sent.message == f"read 3 lines of {kept}" and kept.read_bytes() == b"uts,utc_time\n"
    refused = data.import_history(s, "mallory", "x.csv", b"")
    assert not refused.ok and refused.message == "JobInputError: nope"
