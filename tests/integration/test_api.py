"""The OpenSubsonic server over real HTTP, with a third-party Subsonic client (py-sonic) and raw requests.

The server runs as ``./spark-submit.sh serve`` against the real FerretDB and broker; the catalogue is a
synthetic genre-structured library in Mongo ``tracks`` (some with real WAV files under the library root)
and its index; the recommender stream runs beside it (real Spark), so a player's plays, stars and skips
go through Kafka and come back as that listener's live recommendations.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conf.settings import REPO_ROOT, load_settings
from connectors import mongo_io
from index.reader import Index
from tests.integration.streaming import publish_synthetic_index, stream_environ, wait_for
from tests.lookups import point_of

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.spark]
NS = "{http://subsonic.org/restapi}"
WITH_AUDIO = 12  # tracks that get a real WAV file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_job(repo_root: Path, env: dict, *args: str) -> str:
    out = subprocess.run([str(repo_root / "spark-submit.sh"), *args], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def credentials_of(line: str) -> tuple[str, str]:
    """(password, API key) from ``user add``'s line."""
    words = line.split()
    return words[words.index("password:") + 1], words[words.index("key:") + 1]


@pytest.fixture(scope="module")
def api(stack, spark, repo_root, tmp_path_factory) -> Iterator[dict]:
    from spark_jobs import stream

    root = tmp_path_factory.mktemp("api")
    library = root / "library"
    env = stream_environ(root, "api", EARSHOT_LIBRARY_ROOT=str(library))
    settings = load_settings(env)
    publish_synthetic_index(settings)
    index = Index.open(settings.paths.index_root)
    client = mongo_io.connect(settings)
    db = mongo_io.database(client, settings)
    docs = []
    for i, (tid, track) in enumerate(sorted(index.catalogue.tracks.items())):
        album = f"{track.artist} album {tid % 3}"
        doc = {"_id": tid, "title": track.title, "artist_name": track.artist, "album_title": album,
               "genre_top": track.genre, "duration_s": 30.0, "track_number": tid % 10 + 1,
               "year": 2000 + tid % 20}  # fmt: skip
        if i < WITH_AUDIO:
            path = library / track.genre / f"{tid}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            t = np.linspace(0, 2.0, 44100, endpoint=False)
            sf.write(path, 0.2 * np.sin(2 * np.pi * (220 + tid) * t), 22050)
            doc["audio_path"] = str(path)
        docs.append(doc)
    mongo_io.set_fields_many(db, "tracks", docs)
    password_line = run_job(repo_root, env, "user", "add", "alice")
    password, api_key = credentials_of(password_line)
    run_job(repo_root, env, "user", "add", "bob", "--password", "bobs secret")
    queries, sink = stream.start(spark, settings)
    port = free_port()
    log = root / "serve.log"
    server = subprocess.Popen([str(repo_root / "spark-submit.sh"), "serve", "--port", str(port)], env=env,
                              stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}/rest/"
    try:
        wait_for(lambda: _answers(base), timeout=60, what=f"the API server (log: {log})")
        yield {"env": env, "base": base, "port": port, "password": password, "api_key": api_key, "db": db,
               "index": index, "settings": settings, "library": library, "docs": docs}  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        stream.stop(spark, queries, sink)
        client.drop_database(settings.mongo.database)
        client.close()


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "getOpenSubsonicExtensions?f=json", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def get(api: dict, call: str, *, auth: dict | None = None, headers: dict | None = None, **params):
    """A raw GET; (status, headers, body bytes)."""
    auth = {"apiKey": api["api_key"]} if auth is None else auth
    query = urllib.parse.urlencode({"v": "1.16.1", "c": "tests", **auth, **params}, doseq=True)
    request = urllib.request.Request(api["base"] + call + "?" + query, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def answer(api: dict, call: str, **kw) -> dict:
    status, _, body = get(api, call, f="json", **kw)
    assert status == 200
    return json.loads(body)["subsonic-response"]


def sonic(api: dict, user: str = "alice", password: str | None = None):
    import libsonic

    return libsonic.Connection("http://127.0.0.1", user, password or api["password"], port=api["port"],
                               appName="tests")  # fmt: skip


def test_a_subsonic_client_syncs_the_whole_library_by_empty_search3_paging(api):
    conn = sonic(api)
    assert conn.ping()
    seen, offset = [], 0
    while True:
        page = conn.search3("", artistCount=0, albumCount=0, songCount=100, songOffset=offset)["searchResult3"]
        songs = page.get("song", [])
        if not songs:
            break
        seen += [s["id"] for s in songs]
        offset += len(songs)
    assert sorted(map(int, seen)) == sorted(d["_id"] for d in api["docs"]) and len(set(seen)) == len(seen)
    artists = answer(api, "getArtists")["artists"]["index"]
    names = {a["name"] for group in artists for a in group["artist"]}
    assert names == {d["artist_name"] for d in api["docs"]}
    album_id = artists[0]["artist"][0]["id"]
    albums = answer(api, "getArtist", id=album_id)["artist"]["album"]
    songs = answer(api, "getAlbum", id=albums[0]["id"])["album"]["song"]
    assert songs and all(s["albumId"] == albums[0]["id"] for s in songs)
    folders = answer(api, "getIndexes")["indexes"]["index"]
    artist = folders[0]["artist"][0]["id"]
    children = answer(api, "getMusicDirectory", id=artist)["directory"]["child"]
    inside = answer(api, "getMusicDirectory", id=children[0]["id"])["directory"]["child"]
    assert children[0]["isDir"] is True and inside and all(c["isDir"] is False for c in inside)


def test_xml_answers_are_well_formed_with_the_names_clients_expect(api):
    status, headers, body = get(api, "getSong", id=str(api["docs"][0]["_id"]))
    root = ET.fromstring(body)
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    assert root.tag == NS + "subsonic-response" and root.get("status") == "ok"
    assert root.get("openSubsonic") == "true" and root.get("type") == "earshot" and root.get("version")
    song = root.find(NS + "song")
    assert song is not None and song.get("id") == str(api["docs"][0]["_id"])
    for name in ("title", "artist", "album", "albumId", "artistId", "duration", "suffix", "contentType", "path",
                 "size", "genre", "coverArt", "isDir"):  # fmt: skip
        assert song.get(name), name
    assert song.get("contentType") == "audio/wav" and song.get("isDir") == "false"
    _, _, body = get(api, "getGenres")
    genres = ET.fromstring(body).find(NS + "genres")
    assert {g.text for g in genres.findall(NS + "genre")} == {d["genre_top"] for d in api["docs"]}
    _, headers, body = get(api, "ping", f="jsonp", callback="cb")
    assert body.startswith(b"cb(") and headers["Content-Type"].startswith("application/javascript")


def test_a_player_on_a_slow_network_gets_mp3_or_opus_at_its_rate_and_a_download_is_the_original(api):
    """stream?format=mp3|opus&maxBitRate=K encodes while it streams; raw, a rate above the file's, and download
    are the original file."""
    import io

    doc = api["docs"][1]
    data = Path(doc["audio_path"]).read_bytes()  # 2 s of 22.05 kHz 16-bit WAV, catalogued as 30 s: 23.5 kb/s
    status, headers, body = get(api, "stream", id=str(doc["_id"]), format="mp3", maxBitRate=96)
    assert status == 200 and headers["Content-Type"] == "audio/mpeg" and headers["Accept-Ranges"] == "none"
    info = sf.info(io.BytesIO(body))
    assert info.format == "MP3" and info.duration == pytest.approx(2.0, abs=0.1)
    assert len(body) == pytest.approx(96_000 / 8 * 2.0, rel=0.1), "a constant 96 kb/s"
    status, headers, body = get(api, "stream", id=str(doc["_id"]), maxBitRate=16)
    assert headers["Content-Type"] == "audio/mpeg", "a rate alone under the file's: MP3"
    assert len(body) == pytest.approx(32_000 / 8 * 2.0, rel=0.15), "at MP3's lowest rate, 32 kb/s"
    status, headers, body = get(api, "stream", id=str(doc["_id"]), format="opus", maxBitRate=64)
    assert status == 200 and headers["Content-Type"] == "audio/ogg"
    assert sf.info(io.BytesIO(body)).duration == pytest.approx(2.0, abs=0.1)
    status, headers, body = get(api, "stream", id=str(doc["_id"]), format="mp3", estimateContentLength="true")
    assert status == 200 and headers["Content-Length"] == str(len(body)), "the length it declared, exactly"
    assert len(body) == 192_000 // 8 * doc["duration_s"], "the catalogue's duration at the default rate"
    query = urllib.parse.urlencode({"v": "1.16.1", "c": "tests", "apiKey": api["api_key"], "id": doc["_id"],
                                    "format": "mp3", "estimateContentLength": "true"})  # fmt: skip
    with urllib.request.urlopen(urllib.request.Request(api["base"] + "stream?" + query, method="HEAD")) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "audio/mpeg" and r.read() == b""
        assert r.headers["Content-Length"] == str(len(body)), "HEAD tells the length GET sends"
    status, headers, body = get(api, "stream", id=str(doc["_id"]), format="mp3", maxBitRate=96, timeOffset=1)
    assert sf.info(io.BytesIO(body)).duration == pytest.approx(1.0, abs=0.1), "from the offset"
    for original in ({"format": "raw", "maxBitRate": 64}, {"maxBitRate": 500}, {"format": "flac"}, {}):
        status, headers, body = get(api, "stream", id=str(doc["_id"]), **original)
        assert status == 200 and body == data and headers["Content-Type"] == "audio/wav", original
    status, headers, body = get(api, "download", id=str(doc["_id"]), format="mp3", maxBitRate=64)
    assert status == 200 and body == data, "a download is the original"


def test_stream_serves_the_original_file_with_range_requests(api):
    doc = api["docs"][0]
    data = Path(doc["audio_path"]).read_bytes()
    status, headers, body = get(api, "stream", id=str(doc["_id"]))
    assert status == 200 and body == data and headers["Content-Type"] == "audio/wav"
    status, headers, body = get(api, "stream", id=str(doc["_id"]), headers={"Range": "bytes=100-1099"})
    assert status == 206 and body == data[100:1100]
    assert headers["Content-Range"] == f"bytes 100-1099/{len(data)}" and headers["Content-Length"] == "1000"
    status, headers, body = get(api, "download", id=str(doc["_id"]), headers={"Range": "bytes=-10"})
    assert status == 206 and body == data[-10:]
    status, _, _ = get(api, "stream", id=str(doc["_id"]), headers={"Range": f"bytes={len(data) + 5}-"})
    assert status == 416
    for bad in ("../../../etc/passwd", "/etc/passwd", "99999999", "1e3", ""):
        status, headers, body = get(api, "stream", id=bad, f="json")
        error = json.loads(body)["subsonic-response"]
        assert error["status"] == "failed" and error["error"]["code"] in (10, 70), bad
        assert "etc/passwd" not in body.decode() or "not found" in body.decode()
    from io import BytesIO

    from PIL import Image

    folder = Path(doc["audio_path"]).parent
    Image.new("RGB", (600, 600), (200, 30, 30)).save(folder / "cover.jpg")
    status, headers, body = get(api, "getCoverArt", id=str(doc["_id"]), size=100)
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert max(Image.open(BytesIO(body)).size) == 100, "the folder's image, scaled to the size asked"
    good = (folder / "cover.jpg").read_bytes()
    for junk in (b"", b"<html>not found</html>"):  # a failed download saved as the cover
        (folder / "cover.jpg").write_bytes(junk)
        status, headers, body = get(api, "getCoverArt", id=str(doc["_id"]), size=64)
        assert status == 200 and headers["Content-Type"] == "image/png", "passed over for a generated cover"
        assert Image.open(BytesIO(body)).size == (64, 64)
    (folder / "cover.jpg").write_bytes(good)
    no_file = next(d for d in api["docs"] if "audio_path" not in d)
    status, headers, body = get(api, "getCoverArt", id=str(no_file["_id"]), size=64)
    assert status == 200 and headers["Content-Type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(BytesIO(body)).size == (64, 64), "a generated cover"


def test_a_web_player_on_another_origin_may_call_it_and_seek(api):
    """A browser-based Subsonic client served from elsewhere reads the answers (any origin allowed, as other
    Subsonic servers do), passes its preflight, and sees ``Content-Range`` to seek."""
    origin = {"Origin": "https://player.example"}
    status, headers, _ = get(api, "ping", f="json", headers=origin)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    doc = api["docs"][0]
    status, headers, _ = get(api, "stream", id=str(doc["_id"]), headers={**origin, "Range": "bytes=0-99"})
    assert status == 206 and headers["Access-Control-Allow-Origin"] == "*"
    assert "content-range" in headers["Access-Control-Expose-Headers"].lower()
    asks = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    preflight = urllib.request.Request(api["base"] + "getSong", method="OPTIONS", headers=asks)
    with urllib.request.urlopen(preflight, timeout=10) as r:
        assert r.status == 200 and "POST" in r.headers["Access-Control-Allow-Methods"]
        assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_authentication_token_api_key_and_the_protocols_error_codes(api):
    import hashlib

    salt = "c19b2d"
    token = hashlib.md5((api["password"] + salt).encode()).hexdigest()
    assert answer(api, "ping", auth={"u": "alice", "t": token, "s": salt})["status"] == "ok"
    hexed = "enc:" + b"bobs secret".hex()
    assert answer(api, "ping", auth={"u": "bob", "p": hexed})["status"] == "ok"
    assert answer(api, "ping", auth={"u": "bob", "p": "bobs secret"})["status"] == "ok"

    def code(**auth) -> int:
        reply = answer(api, "ping", auth=auth)
        assert reply["status"] == "failed" and reply["error"]["helpUrl"]
        return reply["error"]["code"]

    # A phone's keyboard capitalises the first letter: the account is found without case, and the listener is
    # alice, as the account spells it (her events, her getUser), whatever the player sends.
    typed = {"u": "Alice", "t": token, "s": salt}
    assert answer(api, "getUser", auth=typed, username="Alice")["user"]["username"] == "alice"
    assert answer(api, "tokenInfo", auth={"u": "BOB", "p": "bobs secret"})["tokenInfo"]["username"] == "bob"
    assert code(u="Alice", p="wrong") == 40
    assert code(u="alice", p="wrong") == 40
    assert code(u="nobody", t=token, s=salt) == 40
    assert code(u="alice", t="0" * 32, s=salt) == 40
    assert code(apiKey="not-a-key") == 44
    assert code(apiKey=api["api_key"], u="alice") == 43
    assert code(u="alice") == 10
    assert code() == 10
    extensions = answer(api, "getOpenSubsonicExtensions", auth={})["openSubsonicExtensions"]
    assert {"apiKeyAuthentication", "playbackReport", "sonicSimilarity", "formPost"} <= {e["name"] for e in extensions}
    assert api["db"]["users"].find_one({"_id": "alice"}).get("password") is None, "no clear password is stored"
    taken = subprocess.run([str(REPO_ROOT / "spark-submit.sh"), "user", "add", "ALICE"], env=api["env"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert taken.returncode != 0 and "without case" in taken.stderr + taken.stdout


def test_what_players_ask_besides_the_core_answers_in_the_protocol(api):
    """The folder-era lists, search and stars (DSub, Ultrasonic), albums by rating, the scan status, whose API key
    this is, and the spec's empty answer for what Earshot does not keep (podcasts, radio, bookmarks...)."""
    from api import empty

    bob = {"u": "bob", "p": "bobs secret"}
    by_name = answer(api, "getAlbumList2", type="alphabeticalByName", size=500)["albumList2"]["album"]
    folders = answer(api, "getAlbumList", type="alphabeticalByName", size=500)["albumList"]["album"]
    assert [a["id"] for a in folders] == [a["id"] for a in by_name] and len(by_name) > 3
    assert all(a["isDir"] is True and a["parent"] == a["artistId"] and a["title"] == a["album"] for a in folders)
    song = api["docs"][0]
    found = answer(api, "search2", query=song["title"], songCount=500)["searchResult2"]
    assert str(song["_id"]) in [s["id"] for s in found["song"]]
    assert all(a["isDir"] is True for a in found.get("album", []))
    for album, rating in ((by_name[1], 5), (by_name[0], 3), (by_name[2], 4)):
        assert answer(api, "setRating", auth=bob, id=album["id"], rating=str(rating))["status"] == "ok"
    answer(api, "setRating", auth=bob, id=by_name[2]["id"], rating="0")  # 0 takes a rating away
    want = [by_name[1]["id"], by_name[0]["id"]]
    assert [a["id"] for a in answer(api, "getAlbumList", auth=bob, type="highest")["albumList"]["album"]] == want
    assert [a["id"] for a in answer(api, "getAlbumList2", auth=bob, type="highest")["albumList2"]["album"]] == want
    assert answer(api, "star", auth=bob, albumId=by_name[3]["id"], id=str(song["_id"]))["status"] == "ok"
    starred = answer(api, "getStarred", auth=bob)["starred"]
    assert [a["id"] for a in starred["album"]] == [by_name[3]["id"]] and starred["album"][0]["isDir"] is True
    assert [s["id"] for s in starred["song"]] == [str(song["_id"])] and starred["song"][0]["starred"]
    # Every entry carries the caller's own stars and ratings (a player's hearts), and only theirs.
    answer(api, "setRating", auth=bob, id=str(song["_id"]), rating="4")
    mine = answer(api, "getSong", auth=bob, id=str(song["_id"]))["song"]
    assert mine["starred"] == starred["song"][0]["starred"] and mine["userRating"] == 4
    assert "starred" not in answer(api, "getSong", id=str(song["_id"]))["song"], "alice did not star it"
    listed = {a["id"]: a for a in answer(api, "getAlbumList2", auth=bob, type="alphabeticalByName", size=500)
              ["albumList2"]["album"]}  # fmt: skip
    assert listed[by_name[1]["id"]]["userRating"] == 5 and listed[by_name[3]["id"]]["starred"]
    assert "userRating" not in listed[by_name[2]["id"]] and "starred" not in listed[by_name[0]["id"]]
    answer(api, "unstar", auth=bob, id=str(song["_id"]))
    assert "starred" not in answer(api, "getSong", auth=bob, id=str(song["_id"]))["song"]
    # What is playing now: a "now playing" scrobble, until the song would have ended.
    assert answer(api, "scrobble", auth=bob, id=str(song["_id"]), submission="false")["status"] == "ok"
    playing = answer(api, "getNowPlaying")["nowPlaying"]["entry"]
    assert [(e["username"], e["id"], e["minutesAgo"]) for e in playing] == [("bob", str(song["_id"]), 0)]
    assert answer(api, "tokenInfo")["tokenInfo"] == {"username": "alice"}
    assert answer(api, "tokenInfo", auth={"apiKey": "not-a-key"})["error"]["code"] == 44
    assert answer(api, "getUsers", auth=bob)["users"]["user"][0]["username"] == "bob"
    assert answer(api, "getScanStatus")["scanStatus"] == {"scanning": False, "count": len(api["docs"])}
    for call, element in empty.NOTHING.items():
        reply = answer(api, call)
        assert reply["status"] == "ok" and reply[element] == {}, call
    for call, element in empty.INFO.items():
        for item in (by_name[0]["artistId"], by_name[0]["id"], str(song["_id"])):
            assert answer(api, call, id=item)[element] == {}, (call, item)
        assert answer(api, call, id="ar-nobody")["error"]["code"] == 70
    # An artist's info: no biography, and the artists whose songs sound nearest to theirs.
    artist = by_name[0]["artistId"]
    similar = answer(api, "getArtistInfo2", id=artist, count="5")["artistInfo2"]["similarArtist"]
    known = {a["id"] for g in answer(api, "getArtists")["artists"]["index"] for a in g["artist"]}
    assert 0 < len(similar) <= 5 and artist not in {a["id"] for a in similar} and {a["id"] for a in similar} <= known
    assert answer(api, "getArtistInfo", id=by_name[0]["id"], count="5")["artistInfo"]["similarArtist"] == similar
    assert answer(api, "getArtistInfo2", id="ar-nobody")["error"]["code"] == 70
    _, _, body = get(api, "getPodcasts")
    root = ET.fromstring(body)
    assert root.get("status") == "ok" and root.find(NS + "podcasts") is not None
    assert answer(api, "getSomethingElse")["error"]["code"] == 70, "a call no server has is still not found"


def test_someone_elses_playlist_is_refused(api):
    bob = sonic(api, "bob", "bobs secret")
    ids = [str(d["_id"]) for d in api["docs"][:3]]
    made = bob.createPlaylist(name="bob's", songIds=ids)["playlist"]
    assert [e["id"] for e in made["entry"]] == ids
    refused = answer(api, "getPlaylist", id=made["id"])
    assert refused["status"] == "failed" and refused["error"]["code"] == 50
    assert answer(api, "deletePlaylist", id=made["id"])["error"]["code"] == 50
    assert answer(api, "updatePlaylist", playlistId=made["id"], songIdToAdd=ids[0])["error"]["code"] == 50
    mine = {p["name"] for p in answer(api, "getPlaylists")["playlists"]["playlist"]}
    assert "bob's" not in mine and "For you" in mine
    assert answer(api, "updatePlaylist", auth={"u": "bob", "p": "bobs secret"}, playlistId=made["id"],
                  songIndexToRemove="0")["status"] == "ok"  # fmt: skip
    assert len(bob.getPlaylist(made["id"])["playlist"]["entry"]) == 2
    # The play queue and the account are each listener's own too.
    assert answer(api, "savePlayQueue", id=ids, current=ids[1], position="4200")["status"] == "ok"
    queue = answer(api, "getPlayQueue")["playQueue"]
    assert [e["id"] for e in queue["entry"]] == ids and queue["current"] == ids[1] and queue["position"] == 4200
    assert "playQueue" not in answer(api, "getPlayQueue", auth={"u": "bob", "p": "bobs secret"})
    assert answer(api, "getUser", username="bob")["error"]["code"] == 50
    assert answer(api, "getUser", username="alice")["user"]["username"] == "alice"
    # The library's own playlists (its .m3u files, as ingest writes them): every listener reads them, none
    # changes them.
    from datetime import UTC, datetime

    from connectors import playlists as store

    doc = store.library_document("/music", "Road trip.m3u", [int(i) for i in ids], changed=datetime.now(UTC))
    store.replace_library(api["db"], "/music", [doc])
    for listener in (sonic(api), bob):
        listed = {p["name"]: p for p in listener.getPlaylists()["playlists"]["playlist"]}
        assert listed["Road trip"]["public"] is True and listed["Road trip"]["owner"] == "library"
        assert [e["id"] for e in listener.getPlaylist(doc["_id"])["playlist"]["entry"]] == ids
    assert answer(api, "updatePlaylist", playlistId=doc["_id"], songIdToAdd=ids[0])["error"]["code"] == 50
    assert answer(api, "deletePlaylist", id=doc["_id"])["error"]["code"] == 50
    store.replace_library(api["db"], "/music", [])
    assert answer(api, "getPlaylist", id=doc["_id"])["error"]["code"] == 70, "its file gone, the playlist is gone"


def test_plays_stars_and_skips_reach_kafka_and_steer_the_live_recommendations(api):
    """A player's scrobbles and stars go through the contract to Kafka and the running stream rewrites the
    listener's recommendations; the "For you" playlist shows them, and a track skipped through the player
    stays out of the next getSimilarSongs2."""
    conn, db, index = sonic(api), api["db"], api["index"]
    jazz = [int(t) for t in index.catalogue.ids_of_genre("Jazz")[:4]]
    conn.scrobble(str(jazz[0]), submission=False)
    listened = int(time.time())  # py-sonic sends it as milliseconds
    conn.scrobble(str(jazz[0]), submission=True, listenTime=listened)
    conn.scrobble(str(jazz[0]), submission=True, listenTime=listened)  # a retry: the same event
    bad = answer(api, "scrobble", id=str(jazz[0]), time="99999999999999999")
    assert bad["error"]["code"] == 10 and "milliseconds" in bad["error"]["message"]
    conn.star(sids=[str(jazz[1])])
    answer(api, "setRating", id=str(jazz[2]), rating=5)
    doc = wait_for(lambda: (d := db["recommendations"].find_one({"_id": "alice"})) and d["events_total"] >= 4 and d,
                   timeout=120, what="alice's recommendations from the stream")  # fmt: skip
    time.sleep(2)
    doc = db["recommendations"].find_one({"_id": "alice"})
    counts = doc["profile"]["counts"]
    assert (counts["play"], counts["complete"], counts["like"]) == (1, 1, 2), counts
    assert doc["profile"]["top_genres"][0] == "Jazz"
    for_you = answer(api, "getPlaylist", id="for-you")["playlist"]
    assert [int(e["id"]) for e in for_you["entry"]] == doc["items"]["track_id"][: len(for_you["entry"])]
    assert for_you["readonly"] is True

    def similar_to(track: int) -> list[int]:
        reply = answer(api, "getSimilarSongs2", id=str(track), count=10)
        return [int(s["id"]) for s in reply["similarSongs2"]["song"]]

    similar = similar_to(jazz[3])
    assert similar and sum(index.catalogue.get(t).genre == "Jazz" for t in similar) >= 7
    skipped = similar[0]
    assert answer(api, "reportPlayback", mediaId=str(skipped), mediaType="song", positionMs=0,
                  state="starting")["status"] == "ok"  # fmt: skip
    assert answer(api, "reportPlayback", mediaId=str(skipped), mediaType="song", positionMs=4000,
                  state="stopped")["status"] == "ok"  # fmt: skip
    wait_for(lambda: db["recommendations"].find_one({"_id": "alice"})["profile"]["counts"]["skip"] == 1,
             timeout=60, what="the skip through the stream")  # fmt: skip
    again = similar_to(jazz[3])
    assert skipped not in again

    from kafka import KafkaConsumer

    kafka = api["settings"].kafka
    consumer = KafkaConsumer(kafka.listens_topic, bootstrap_servers=kafka.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)  # fmt: skip
    events = [json.loads(m.value) for m in consumer]
    consumer.close()
    mine = [e for e in events if e["user_id"] == "alice"]
    completes = [e for e in mine if e["type"] == "complete"]
    assert len(completes) == 2 and completes[0]["event_id"] == completes[1]["event_id"], "a retried scrobble"
    assert all(e["client"] == "tests" or e["client"] == "py-sonic" for e in mine)
    skip = next(e for e in mine if e["type"] == "skip")
    assert skip["position_ms"] == 4000 and skip["track_id"] == skipped


def test_sonic_similarity_and_a_sonic_path_on_the_real_index(api):
    index = api["index"]
    seed = int(index.catalogue.ids_of_genre("Rock")[0])
    matches = answer(api, "getSonicSimilarTracks", id=str(seed), count=8)["sonicMatch"]
    scores = [m["similarity"] for m in matches]
    assert len(matches) == 8 and all(0 <= s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    assert sum(index.catalogue.get(int(m["entry"]["id"])).genre == "Rock" for m in matches) >= 6
    end = int(index.catalogue.ids_of_genre("Classical")[0])
    path = answer(api, "findSonicPath", startSongId=str(seed), endSongId=str(end), count=6)["sonicMatch"]
    ids = [int(m["entry"]["id"]) for m in path]
    assert ids[0] == seed and ids[-1] == end and len(ids) == len(set(ids)) and 3 <= len(ids) <= 6
    a, b = point_of(index, seed), point_of(index, end)
    along = [float(np.dot(point_of(index, t) - a, b - a) / np.dot(b - a, b - a)) for t in ids]
    assert along[1] < along[-2], "the path moves from the first song toward the second"


@contextlib.contextmanager
def second_server(api: dict, repo_root: Path, tmp_path: Path, **env: str) -> Iterator[dict]:
    """Another ``serve`` over the same library with ``env`` changed; ``api`` as the tests use it, for that server."""
    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen([str(repo_root / "spark-submit.sh"), "serve", "--port", str(port)],
                              env={**api["env"], **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        other = {**api, "base": f"http://127.0.0.1:{port}/rest/"}
        wait_for(lambda: _answers(other["base"]), timeout=60, what=f"the second server (log: {log})")
        yield other
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_broker_that_does_not_answer_is_a_clear_error_not_a_hang(api, repo_root, tmp_path):
    """A scrobble the broker cannot take is answered with an error the app can show and retry, in seconds."""
    with second_server(api, repo_root, tmp_path, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}") as other:
        started = time.monotonic()
        reply = answer(other, "scrobble", id=str(api["docs"][0]["_id"]), submission="true")
        took = time.monotonic() - started
        assert reply["status"] == "failed" and reply["error"]["code"] == 0, reply
        assert "broker" in reply["error"]["message"] and "retry" in reply["error"]["message"]
        assert took < 30, f"the call hung for {took:.0f} s"
        assert answer(other, "getSong", id=str(api["docs"][0]["_id"]))["status"] == "ok", "browsing goes on"


def test_an_offline_batch_of_scrobbles_goes_on_past_a_song_no_longer_in_the_library(api):
    """An app sends its offline queue as one scrobble of many ids and times: a song removed since is passed over
    and the rest are stored (else the app would retry the batch for ever); only unknown songs is error 70."""
    from kafka import KafkaConsumer

    bob = {"u": "bob", "p": "bobs secret"}
    known = [str(d["_id"]) for d in api["docs"][2:4]]
    base = int(time.time() * 1000) - 3_600_000
    times = [str(base + i * 240_000) for i in range(3)]
    reply = answer(api, "scrobble", auth=bob, id=[known[0], "987654321", known[1]], time=times, submission="true")
    assert reply["status"] == "ok", reply
    assert answer(api, "scrobble", auth=bob, id=["987654321"], time=times[:1])["error"]["code"] == 70
    kafka = api["settings"].kafka
    consumer = KafkaConsumer(kafka.listens_topic, bootstrap_servers=kafka.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)  # fmt: skip
    mine = [e for m in consumer if (e := json.loads(m.value))["user_id"] == "bob" and e["type"] == "complete"]
    consumer.close()
    stored = sorted((e["track_id"], e["ts"]) for e in mine)
    assert stored == [(int(known[0]), event_ts(times[0])), (int(known[1]), event_ts(times[2]))]


def event_ts(ms: str) -> str:
    """A scrobble's ``time`` (milliseconds) as its event's ``ts``."""
    from datetime import UTC, datetime

    from events.contract import format_ts

    return format_ts(datetime.fromtimestamp(int(ms) / 1000, UTC))


def test_a_listens_topic_nothing_has_created_yet_is_created_and_the_first_star_stored(api, repo_root, tmp_path):
    """The server may run before the stream ever has on a broker that creates no topic by itself (the local one
    does not): it creates the listens topic, so the first star is stored at once instead of waiting out the
    producer's metadata timeout and failing as if the broker did not answer."""
    from kafka import KafkaConsumer

    topic = f"listens-new-{uuid.uuid4().hex[:8]}"
    track = api["docs"][1]["_id"]
    with second_server(api, repo_root, tmp_path, EARSHOT__KAFKA__LISTENS_TOPIC=topic) as other:
        started = time.monotonic()
        reply = answer(other, "star", id=str(track))
        took = time.monotonic() - started
        assert reply["status"] == "ok", reply
        assert took < 5, f"the star took {took:.1f} s"
    consumer = KafkaConsumer(topic, bootstrap_servers=api["settings"].kafka.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)  # fmt: skip
    events = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert [(e["user_id"], e["track_id"], e["type"]) for e in events] == [("alice", track, "like")]
