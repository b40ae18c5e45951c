"""Dashboard pages under Streamlit's app tests against the real database: down, then back."""

from __future__ import annotations

import pytest

from conf.settings import load_settings
from tests.integration.streaming import publish_synthetic_index, stream_environ
from tests.unit.test_dashboard import run_page

pytestmark = [pytest.mark.mongo, pytest.mark.kafka]


def test_the_player_says_the_database_is_down_then_recovers_when_it_is_back(stack, tmp_path, monkeypatch):
    env = stream_environ(tmp_path, "live")
    publish_synthetic_index(load_settings(env))
    for key in ("EARSHOT_INDEX_ROOT", "EARSHOT_LAKE_ROOT", "MONGO_DATABASE"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:1/")
    down = run_page("player")
    assert not down.exception
    assert any("does not answer" in e.value for e in down.error)

    monkeypatch.setenv("MONGO_URI", stack.mongo.uri)
    back = run_page("player")
    assert not back.exception, back.exception
    assert not back.error
    assert back.title[0].value == "Earshot"
    assert any("matches of 640 tracks" in c.value for c in back.caption)


def test_the_pipeline_page_shows_the_last_check_of_lake_against_serving_store(stack, tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from connectors import mongo_io

    env = stream_environ(tmp_path, "checkpage")
    settings = load_settings(env)
    for key in ("EARSHOT_INDEX_ROOT", "EARSHOT_LAKE_ROOT", "MONGO_DATABASE"):
        monkeypatch.setenv(key, env[key])
    never = run_page("monitoring")
    assert not never.exception, never.exception
    assert any("never checked" in c.value for c in never.caption)
    with mongo_io.connect(settings) as client:
        db = client[settings.mongo.database]
        examples = {"missing": [7], "extra": [], "field": [], "features": []}
        result = {"differences": 1, "missing": 1, "extra": 0, "field": 0, "features": 0, "examples": examples}
        db["pipeline_checks"].insert_one({"_id": "tracks", **result, "repaired": 0, "at": datetime.now(UTC)})
        try:
            page = run_page("monitoring")
        finally:
            client.drop_database(settings.mongo.database)
    assert not page.exception, page.exception
    assert any(m.value == "1 differences" for m in page.metric)
