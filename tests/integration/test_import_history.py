"""import-history on real Spark, Delta and the MongoDB-protocol server: a ListenBrainz export and a Last.fm CSV
of one person, matched to a catalogue, archived once, reported exactly."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from conf.errors import JobInputError
from conf.settings import load_settings
from spark_jobs import import_history
from tests.conftest import isolated_environ
from tests.integration.jobs import run_job, table

pytestmark = [pytest.mark.spark, pytest.mark.mongo]
T0 = 1_700_000_000  # 2023-11-14
ARTISTS = ("Muse", "Beyoncé", "Sigur Rós", "Radiohead")


def catalogue_docs() -> list[dict]:
    """Mongo ``tracks`` as ingest writes them: 40 tracks, the first 10 with a recording MBID in their tags."""
    docs = []
    for i in range(40):
        artist = ARTISTS[i % 4]
        docs.append({"_id": 100 + i, "title": f"Song {i}", "artist_name": artist, "album_title": f"Album {i % 3}",
                     "genre_top": "Rock" if i % 2 else "Pop", "recording_mbid": f"mbid-{i}" if i < 10 else None,
                     "isrc": None})  # fmt: skip
    return docs


def lb_export() -> bytes:
    """300 listens: 100 by MBID (with a title the catalogue spells otherwise), 120 by name (in other case,
    with credits and remaster suffixes), 80 of three artists the library lacks; one broken line; a like."""
    lines = []
    for n in range(300):
        at = T0 + 60 * n
        if n < 100:
            info = {"recording_mbid": f"MBID-{n % 10}"}
            meta = {"artist_name": "someone", "track_name": "renamed", "additional_info": info}
        elif n < 220:
            i = 10 + n % 30
            title = [f"SONG {i}", f"Song {i} - 2011 Remaster", f"Song {i} (feat. Guest)"][n % 3]
            meta = {"artist_name": ARTISTS[i % 4].upper(), "track_name": title, "additional_info": {}}
        else:
            meta = {"artist_name": f"Missing {n % 3}", "track_name": f"Gone {n % 5}", "additional_info": {}}
        lines.append(json.dumps({"listened_at": at, "track_metadata": meta}))
    lines.insert(7, "{broken")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("listens/2023/11.jsonl", "\n".join(lines))
        z.writestr("feedback.jsonl", json.dumps({"recording_mbid": "mbid-3", "score": 1, "created": T0 + 5}))
    return buf.getvalue()


@pytest.fixture()
def library(stack, spark, tmp_path):
    env = isolated_environ(tmp_path, MONGO_DATABASE="earshot_test_history",
                           EARSHOT__KAFKA__LISTENS_TOPIC=f"listens-history-{tmp_path.name}")  # fmt: skip
    settings = load_settings(env)
    from connectors import mongo_io

    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)
        mongo_io.database(client, settings)["tracks"].insert_many(catalogue_docs())
    yield settings
    with mongo_io.connect(settings) as client:
        client.drop_database(settings.mongo.database)


def test_an_export_is_matched_archived_once_and_reported_exactly(library, tmp_path, capsys):
    from connectors import mongo_io

    export = tmp_path / "listenbrainz.zip"
    export.write_bytes(lb_export())
    assert run_job(import_history, library, "--user", "ana", str(export)) == 0
    out = capsys.readouterr().out
    assert "matched 221 (101 by mbid, 0 by isrc, 120 by name), 80 not in this library" in out, out
    lacks = next(line for line in out.splitlines() if line.startswith("most played"))
    assert lacks.endswith("Missing 1 (27); Missing 2 (27); Missing 0 (26)"), lacks  # 220..299 by n % 3
    assert "listenbrainz.zip!listens/2023/11.jsonl:8" in out
    events = table(library, "events")
    assert len(events) == 221 and set(events["user_id"]) == {"ana"}  # each listen its own minute: no repeats
    assert set(events["type"]) == {"complete", "like"} and set(events["client"]) == {"import:listenbrainz-zip"}
    assert set(events["context"]) == {"history"} and events["ts"].min().value // 10**9 == T0
    assert set(events["track_id"]) <= {100 + i for i in range(40)} and events["genre"].notna().all()
    with mongo_io.connect(library) as client:
        (doc,) = mongo_io.database(client, library)["history_imports"].find({"user_id": "ana"})
    counts = (doc["read"], doc["listens"], doc["problems"], doc["unmatched"], doc["events_added"])
    assert counts == (302, 301, 1, 80, 221) and (doc["taste_listens"], doc["taste_messages"]) == (221, 1)
    assert "221 listens sent to the live taste in 1 history messages" in out

    # The same file again: nothing new anywhere.
    assert run_job(import_history, library, "--user", "ana", str(export)) == 0
    out = capsys.readouterr().out
    assert "0 new events in Delta events" in out and "0 listens sent to the live taste" in out
    assert len(table(library, "events")) == 221

    # The same person's Last.fm CSV: its listens are other events (other times), a bad row is a problem.
    csv = tmp_path / "scrobbles.csv"
    csv.write_text("uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n"
                   f"{T0 + 9},x,Muse,,Album 1,,Song 4,\n{T0 + 9},x,Muse,,,,Song 4\n", encoding="utf-8")  # fmt: skip
    assert run_job(import_history, library, "--user", "ana", str(csv)) == 0
    assert "scrobbles.csv:3: 7 columns, not 8" in capsys.readouterr().out
    assert len(table(library, "events")) == 222


def test_a_missing_file_or_an_empty_catalogue_is_one_clear_error(library, tmp_path):
    with pytest.raises(JobInputError, match="nope.zip: no such file"):
        run_job(import_history, library, "--user", "ana", str(tmp_path / "nope.zip"))
    with pytest.raises(JobInputError, match="--user must be"):
        run_job(import_history, library, "--user", " ", str(tmp_path / "nope.zip"))
