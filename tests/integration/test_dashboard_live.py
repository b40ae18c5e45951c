"""Dashboard pages under Streamlit's app tests against the real database: down, then back."""

from __future__ import annotations

import pytest

from conf.settings import load_settings
from tests.integration.test_stream import publish_synthetic_index, stream_environ
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
