"""Saved playlists on the real MongoDB-protocol server: create, list, rename, reorder, delete, owners only."""

from __future__ import annotations

import pytest

from connectors import playlists
from connectors.playlists import PlaylistStoreError

pytestmark = pytest.mark.mongo


def test_a_playlist_is_saved_renamed_reordered_and_deleted(mongo_db):
    first = playlists.create(mongo_db, owner="alice", name=" Morning ", track_ids=[3, 1, 2], source={"kind": "seed"})
    second = playlists.create(mongo_db, owner="alice", name="Evening", track_ids=[9], source={"kind": "mood"})
    playlists.create(mongo_db, owner="bob", name="Bob's", track_ids=[4], source={"kind": "taste"})
    assert first != second and len(first) >= 10
    assert [d["_id"] for d in playlists.list_for(mongo_db, "alice")] == [second, first]
    doc = playlists.get(mongo_db, first)
    assert (doc["name"], doc["track_ids"], doc["owner"], doc["source"]) == (
        "Morning",
        [3, 1, 2],
        "alice",
        {"kind": "seed"},
    )

    playlists.rename(mongo_db, first, owner="alice", name="Early")
    assert playlists.move(mongo_db, first, owner="alice", position=2, by=-1) == [3, 2, 1]
    playlists.reorder(mongo_db, first, owner="alice", track_ids=[1, 3])  # 2 taken out
    doc = playlists.get(mongo_db, first)
    assert (doc["name"], doc["track_ids"]) == ("Early", [1, 3]) and doc["updated_at"] >= doc["created_at"]
    assert [d["_id"] for d in playlists.list_for(mongo_db, "alice")][0] == first  # the newest change first

    playlists.delete(mongo_db, second, owner="alice")
    assert playlists.get(mongo_db, second) is None
    assert [d["name"] for d in playlists.list_for(mongo_db, "bob")] == ["Bob's"]


def test_bad_requests_say_what_to_fix_and_change_nothing(mongo_db):
    pid = playlists.create(mongo_db, owner="alice", name="Mine", track_ids=[1, 2], source={"kind": "seed"})
    cases = [
        (
            lambda: playlists.create(mongo_db, owner="alice", name="  ", track_ids=[1], source={}),
            "give the playlist a name",
        ),
        (lambda: playlists.create(mongo_db, owner="alice", name="x" * 101, track_ids=[1], source={}), "at most 100"),
        (
            lambda: playlists.create(mongo_db, owner="alice", name="Empty", track_ids=[], source={}),
            "at least one track",
        ),
        (lambda: playlists.create(mongo_db, owner="", name="No one", track_ids=[1], source={}), "needs an owner"),
        (lambda: playlists.rename(mongo_db, pid, owner="mallory", name="Ha"), "belongs to another listener"),
        (lambda: playlists.delete(mongo_db, pid, owner="mallory"), "belongs to another listener"),
        (lambda: playlists.reorder(mongo_db, pid, owner="alice", track_ids=[2, 7]), "only move or take out"),
        (lambda: playlists.reorder(mongo_db, pid, owner="alice", track_ids=[2, 2]), "each once"),
        (lambda: playlists.move(mongo_db, pid, owner="alice", position=5, by=1), "no track at position 5"),
        (lambda: playlists.rename(mongo_db, "nope", owner="alice", name="X"), "no playlist 'nope'"),
    ]
    for call, reason in cases:
        with pytest.raises(PlaylistStoreError, match=reason):
            call()
    doc = playlists.get(mongo_db, pid)
    assert (doc["name"], doc["track_ids"]) == ("Mine", [1, 2])
    assert [d["owner"] for d in playlists.list_for(mongo_db, "alice")] == ["alice"]
