"""The playlists page and share links under Streamlit's app tests, against the real database and broker."""

from __future__ import annotations

import pytest

from conf.settings import load_settings
from connectors import mongo_io
from index.reader import Index
from tests.integration.streaming import publish_synthetic_index, stream_environ
from tests.unit.test_dashboard import page_script

pytestmark = [pytest.mark.mongo, pytest.mark.kafka]


@pytest.fixture()
def served(stack, tmp_path, monkeypatch):
    env = stream_environ(tmp_path, "plpage")
    settings = load_settings(env)
    publish_synthetic_index(settings)
    for key in ("EARSHOT_INDEX_ROOT", "EARSHOT_LAKE_ROOT", "MONGO_DATABASE", "EARSHOT__KAFKA__LISTENS_TOPIC"):
        monkeypatch.setenv(key, env[key])
    from connectors import kafka_io

    kafka_io.ensure_topic(settings, settings.kafka.listens_topic)
    client = mongo_io.connect(settings)
    try:
        yield mongo_io.database(client, settings), Index.open(settings.paths.index_root)
    finally:
        client.drop_database(settings.mongo.database)
        client.close()


def page(name: str, user: str, **query: str):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(page_script, args=(name,), default_timeout=60)
    app.session_state["user"] = user
    for key, value in query.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, app.exception
    return app


def test_a_playlist_from_a_track_is_saved_renamed_reordered_trimmed_and_deleted(served):
    db, index = served
    app = page("playlists", "carol")
    app.radio(key="pl_source").set_value("a track").run()
    app.text_input(key="pl_search").input("Jazz").run()
    app.button(key="pl_generate").click().run()
    tracks = app.session_state["draft"]["tracks"]
    seed = app.selectbox(key="pl_seed").value
    assert len(tracks) == 15 and tracks[0] == seed
    assert sum(index.catalogue.get(t).genre == "Jazz" for t in tracks) >= 12
    app.text_input(key="pl_name").input("Jazz hour").run()
    app.button(key="pl_save").click().run()
    assert not app.exception, app.exception
    (doc,) = db["playlists"].find({"owner": "carol"})
    pid = doc["_id"]
    assert (doc["name"], doc["track_ids"], doc["source"]) == ("Jazz hour", tracks, {"kind": "seed", "track_id": seed})

    app.text_input(key=f"pl_rename_{pid}").input("Jazz evening").run()
    app.button(key="pl_rename_go").click().run()
    app.number_input(key=f"pl_pos_{pid}").set_value(2).run()
    app.button(key="pl_move_-1").click().run()
    app.number_input(key=f"pl_pos_{pid}").set_value(15).run()
    app.button(key="pl_take_out").click().run()
    assert not app.exception, app.exception
    doc = db["playlists"].find_one({"_id": pid})
    assert doc["name"] == "Jazz evening"
    assert doc["track_ids"] == [tracks[1], tracks[0], *tracks[2:14]]
    app.button(key="pl_delete").click().run()
    assert db["playlists"].find_one({"_id": pid}) is None
    assert any("none yet" in c.value for c in app.caption)


def test_without_recommendations_my_taste_says_what_to_do_and_an_unnamed_playlist_is_not_saved(served):
    app = page("playlists", "erin")
    app.radio(key="pl_source").set_value("my taste").run()
    app.button(key="pl_generate").click().run()
    assert any("no recommendations to go on yet" in w.value for w in app.warning)
    app.radio(key="pl_source").set_value("a mood").run()
    app.slider(key="mood_tempo").set_value(-1.0).run()
    app.button(key="pl_generate").click().run()
    assert len(app.session_state["draft"]["tracks"]) == 15
    app.button(key="pl_save").click().run()
    assert any("give the playlist a name" in w.value for w in app.warning)
    db, _ = served
    assert db["playlists"].count_documents({}) == 0


def test_share_links_open_the_playlist_the_track_or_its_radio_for_another_listener(served):
    from connectors import playlists

    db, index = served
    pid = playlists.create(db, owner="carol", name="For Dave", track_ids=[3, 5, 8], source={"kind": "seed"})
    shared = page("playlists", "dave", playlist=pid)
    assert any(h.value == "Shared with you: 'For Dave' by carol" for h in shared.subheader)
    shared.button(key="pl_copy").click().run()
    (copy,) = db["playlists"].find({"owner": "dave"})
    assert (copy["track_ids"], copy["source"]["playlist"]) == ([3, 5, 8], pid)
    gone = page("playlists", "dave", playlist="nope")
    assert any("is not there any more" in w.value for w in gone.warning)

    track = int(index.catalogue.ids_of_genre("Folk")[0])
    opened = page("player", "dave", track=str(track))
    assert opened.session_state["track"] == track and opened.session_state["context"] == "link"
    assert any(f"track {track}" in i.value for i in opened.info)
    radio = page("player", "dave", radio=str(track))
    assert radio.session_state["track"] == track
    assert radio.expander and radio.expander[0].proto.expanded
    for bad in ("../etc/passwd", "999999", "-1"):
        refused = page("player", "dave", track=bad)
        assert "track" not in refused.session_state
