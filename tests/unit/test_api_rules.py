"""The OpenSubsonic server's pure parts: the answer's two encodings, credentials, the listening rule."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET

import pytest

from api import credentials, listening
from api.respond import NOT_FOUND, ApiError, encode, envelope

pytestmark = pytest.mark.unit
NS = "{http://subsonic.org/restapi}"


def test_one_reply_encodes_as_subsonic_xml_and_json():
    payload = {"genres": {"genre": [{"value": "Rock & Roll", "songCount": 3}, {"value": "<Jazz>", "songCount": 1}]},
               "song": {"id": "7", "isDir": False, "title": 'say "hi"', "year": None}}  # fmt: skip
    xml, kind = encode(envelope(payload), "xml", None)
    root = ET.fromstring(xml)
    assert kind.startswith("text/xml") and root.tag == NS + "subsonic-response" and root.get("status") == "ok"
    assert [g.text for g in root.find(NS + "genres")] == ["Rock & Roll", "<Jazz>"]
    song = root.find(NS + "song")
    assert song.get("isDir") == "false" and song.get("title") == 'say "hi"' and song.get("year") is None
    tricky = "Rock 'n' \"Roll\" & <Blues>\n\ttwo lines"
    xml, _ = encode(envelope({"song": {"title": tricky, "track": 3, "score": 0.5}}), "xml", None)
    song = ET.fromstring(xml).find(NS + "song")
    assert (song.get("title"), song.get("track"), song.get("score")) == (tricky, "3", "0.5")
    body, kind = encode(envelope(payload), "json", None)
    doc = json.loads(body)["subsonic-response"]
    assert doc["openSubsonic"] is True and doc["genres"]["genre"][0] == {"value": "Rock & Roll", "songCount": 3}
    assert "year" not in doc["song"] and doc["song"]["isDir"] is False, "no value is left out, as in XML"
    wrapped, kind = encode(envelope(payload), "jsonp", "cb_1")
    assert wrapped.startswith(b"cb_1(") and kind.startswith("application/javascript")
    unsafe, kind = encode(envelope(payload), "jsonp", "alert(1)//")
    assert kind.startswith("application/json"), "a callback that is not a plain name is not echoed"


def test_an_error_is_a_value_with_the_protocols_code():
    body, _ = encode(envelope(None, ApiError(NOT_FOUND, "song not found")), "xml", None)
    root = ET.fromstring(body)
    error = root.find(NS + "error")
    assert root.get("status") == "failed" and error.get("code") == "70" and error.get("helpUrl")


def test_a_password_is_kept_sealed_and_checks_against_a_token():
    secret = b"k" * 32
    stored, password, api_key = credentials.new_credentials(secret, None)
    assert password not in json.dumps(stored) and api_key not in json.dumps(stored)
    assert credentials.unseal(secret, stored) == password
    assert credentials.unseal(b"x" * 32, stored) is None, "another server's secret reads nothing"
    token = hashlib.md5((password + "salt").encode()).hexdigest()
    assert credentials.token_matches(password, "salt", token) and not credentials.token_matches(password, "s", token)
    assert credentials.plain_password("enc:" + "pässword".encode().hex()) == "pässword"
    assert credentials.plain_password("enc:zz") is None
    assert stored["api_key_sha256"] == credentials.key_hash(api_key)


def test_the_listening_rule():
    start = 1_000_000
    play = listening.from_report("a", 5, state="starting", position_ms=0, duration_s=200, started_ms=start,
                                 now_ms=start)  # fmt: skip
    assert play.type == "play"

    def stop(at_s: float, duration: float | None = 200):
        return listening.from_report("a", 5, state="stopped", position_ms=int(at_s * 1000), duration_s=duration,
                                     started_ms=start, now_ms=start + 1)  # fmt: skip

    assert stop(10).type == "skip" and stop(10).position_ms == 10_000
    assert stop(150) is None, "past half: not a skip; the scrobble counts it"
    assert stop(190).type == "complete"
    assert stop(300, None) is None and stop(30, None).type == "skip"
    assert stop(10).event_id == stop(10).event_id, "a retried stop is the same event"
    assert listening.from_report("a", 5, state="paused", position_ms=1, duration_s=200, started_ms=start,
                                 now_ms=start) is None  # fmt: skip
    now_playing = listening.from_scrobble("a", 5, submission=False, at_ms=start)
    counted = listening.from_scrobble("a", 5, submission=True, at_ms=start)
    assert (now_playing.type, counted.type) == ("play", "complete") and now_playing.event_id != counted.event_id
    assert listening.from_scrobble("a", 5, submission=True, at_ms=start).event_id == counted.event_id
    assert listening.from_rating("a", 5, rating=5, at_ms=start).type == "like"
    assert listening.from_rating("a", 5, rating=1, at_ms=start).type == "dislike"
    assert listening.from_rating("a", 5, rating=3, at_ms=start) is None
    assert listening.from_star("a", 5, at_ms=start).type == "like"


def test_marks_go_on_songs_albums_and_artists_only():
    from api.marks import View, has_entries, mark

    song = {"id": "12", "isDir": False, "mediaType": "song", "title": "a"}
    folder = {"id": "al-1", "isDir": True, "title": "an album"}
    payload = {"playlist": {"id": "12", "name": "same id as the song, not a song",
                            "entry": [song, {"id": "13", "isDir": False, "mediaType": "song"}]},
               "artist": [{"id": "ar-9", "name": "x", "album": [folder]}]}  # fmt: skip
    assert has_entries(payload) and not has_entries({"playlists": {"playlist": [{"id": "12", "name": "p"}]}})
    mark(payload, View(starred={"12": "2026-01-01T00:00:00Z", "ar-9": "2026-01-02T00:00:00Z"},
                       ratings={"12": 4, "al-1": 5}))  # fmt: skip
    assert song["starred"] == "2026-01-01T00:00:00Z" and song["userRating"] == 4
    assert "starred" not in payload["playlist"] and "userRating" not in payload["playlist"]["entry"][1]
    assert payload["artist"][0]["starred"] == "2026-01-02T00:00:00Z" and folder["userRating"] == 5


def test_marks_are_read_once_forgotten_on_a_change_and_a_database_outage_is_not_waited_on_every_call():
    from datetime import UTC, datetime

    from api.marks import Marks, View

    class Annotations:
        def __init__(self):
            self.docs, self.reads, self.down = [], 0, False

        def find(self, query):
            self.reads += 1
            if self.down:
                raise ConnectionError("no database")
            return [d for d in self.docs if d["user"] == query["user"]]

    store = Annotations()
    marks = Marks(lambda: {"annotations": store})
    store.docs.append({"user": "ann", "kind": "star", "item": "7", "at": datetime(2026, 1, 2, tzinfo=UTC)})
    assert marks.cached("ann") is None
    assert marks.load("ann") == View({"7": "2026-01-02T00:00:00Z"}, {}) and marks.cached("ann") is not None
    store.docs.append({"user": "ann", "kind": "rating", "item": "al-1", "value": 4})
    marks.forget("ann")
    assert marks.cached("ann") is None and marks.load("ann").ratings == {"al-1": 4}
    store.down = True
    marks.forget("ann")
    with pytest.raises(ConnectionError):
        marks.load("bob")
    assert marks.cached("bob") == View({}, {}), "after a failed read the next calls do not wait for the database"
    assert store.reads == 3


def test_an_integer_parameter_past_64_bits_is_refused_as_a_bad_parameter_not_a_server_error():
    """A store keeps 8-byte integers: a player's (or a fuzzer's) position of 10^22 is error 10, said why, and
    not a failed write (error 0 and a traceback in the log), whatever call it comes with."""
    from api.call import Call
    from api.respond import MISSING

    huge = "9" * 22
    with pytest.raises(ApiError) as refused:
        Call({"position": [huge]}).integer("position", 0, lo=0)
    assert refused.value.code == MISSING and "64 bits" in str(refused.value)
    with pytest.raises(ApiError):
        Call({"offset": ["-" + huge]}).integer("offset", 0)
    assert Call({"position": [str(2**63 - 1)]}).integer("position", 0, lo=0) == 2**63 - 1
    assert Call({"size": ["500000"]}).integer("size", 10, hi=500) == 500


def test_search_compares_names_without_case_or_accents():
    """A phone's keyboard has no accents: "bjork" finds Björk, "sigur ros" Sigur Rós, "royksopp" Röyksopp and
    Røyksopp, and an accented query finds the plain name too."""
    from index.catalogue import folded

    assert folded("Björk") == "bjork"
    assert folded("Sigur Rós") == "sigur ros"
    assert folded("Röyksopp") == folded("Røyksopp") == "royksopp"
    assert folded("Motörhead — Ace of Spades") == "motorhead — ace of spades"
    assert folded("Straße") == "strasse" and folded("ＡＢＣ") == "abc"
    assert "cafe" in folded("Café Tacvba") and folded("café") in folded("CAFE TACVBA")


def test_a_compilation_is_one_album_of_its_album_artist_in_disc_and_track_order(tmp_path):
    """Tagged libraries name an album artist (or only flag a compilation): the album is one album under it, not one
    per track artist, its songs in disc then track order; each track artist is an artist too, who appears on it."""
    from api.library import Library

    def doc(i, title, artist, album, *, album_artist=None, disc=None, track=None):
        return {"_id": i, "title": title, "artist_name": artist, "album_title": album, "album_artist": album_artist,
                "disc_number": disc, "track_number": track, "audio_path": str(tmp_path / f"{i}.mp3")}  # fmt: skip

    docs = [
        doc(1, "Two-One", "Nina Simone", "Hits", album_artist="Various Artists", disc=2, track=1),
        doc(2, "One-Two", "Sade", "Hits", album_artist="Various Artists", disc=1, track=2),
        doc(3, "One-One", "Nina Simone", "Hits", album_artist="Various Artists", disc=1, track=1),
        doc(4, "Own", "Nina Simone", "Pastel Blues", track=1),
        doc(5, "Feat", "Band feat. Guest", "Record", album_artist="Band", track=1),
        doc(6, "Solo", "Band", "Record", track=2),  # no album artist tag: the track's artist, the same album
    ]
    lib = Library(lambda: docs, tmp_path).fresh()
    hits = [a for a in lib.albums.values() if a.name == "Hits"]
    assert len(hits) == 1 and hits[0].artist == "Various Artists"
    assert [s.title for s in hits[0].songs] == ["One-One", "One-Two", "Two-One"]
    assert [s.entry()["discNumber"] for s in hits[0].songs] == [1, 1, 2]
    record = [a for a in lib.albums.values() if a.name == "Record"]
    assert len(record) == 1 and [s.title for s in record[0].songs] == ["Feat", "Solo"]
    by_name = {a.name: a for a in lib.artists.values()}
    assert sorted(a.name for a in by_name["Various Artists"].albums) == ["Hits"]
    nina = by_name["Nina Simone"]
    assert sorted(a.name for a in nina.albums) == ["Hits", "Pastel Blues"], "her own album and the one she is on"
    assert sorted(s.title for s in nina.songs()) == ["One-One", "Own", "Two-One"], "her songs, not Sade's"
    assert len(by_name["Various Artists"].songs()) == 3
    song = lib.songs[2]
    assert song.entry()["artistId"] == by_name["Sade"].id and song.entry()["albumId"] == hits[0].id
    assert [s.title for s in lib.song_order][:3] == ["Feat", "Solo", "Own"], "by album artist, album, disc, track"


def test_what_a_player_s_format_and_rate_ask_for():
    from api.transcode import Encoding, choice

    assert choice("raw", 64, "flac", 900) is None, "raw is the original, whatever the rate"
    assert choice(None, 0, "flac", 900) is None and choice("flac", 0, "flac", 900) is None
    assert choice(None, 320, "mp3", 256) is None, "the file is within the rate"
    assert choice("mp3", 0, "mp3", 320) is None, "the file is the format, no rate asked"
    assert choice("aac", 0, "flac", 900) is None, "a format this server does not encode, no rate: the original"
    assert choice("mp3", 0, "flac", 900) == Encoding("mp3", 192)
    assert choice(None, 128, "flac", 900) == Encoding("mp3", 128), "a rate alone: MP3"
    assert choice(None, 100, "flac", None) == Encoding("mp3", 96), "an MP3 rate at or under the one asked"
    assert choice("aac", 100, "flac", 900) == Encoding("mp3", 96)
    assert choice("ogg", 64, "mp3", 320) == Encoding("opus", 64) and choice("OPUS", 5000, "m4a", 256) is not None
    assert choice(None, 8, "flac", 900) == Encoding("mp3", 32), "MP3's lowest"
    assert Encoding("mp3", 128).length(10) == 160_000 and Encoding("opus", 96).mime == "audio/ogg"


def test_a_declared_length_is_the_body_s_and_a_file_ffmpeg_cannot_read_fails_before_any_byte(tmp_path):
    from api.transcode import Encoding, encoded, exactly

    assert b"".join(exactly(iter([b"abc", b"def"]), 4)) == b"abcd"
    assert b"".join(exactly(iter([b"ab"]), 5)) == b"ab\x00\x00\x00"
    junk = tmp_path / "moved.mp3"
    junk.write_bytes(b"<html>moved</html>" * 100)
    with pytest.raises(Exception):  # noqa: B017 - FFmpeg's own error
        next(encoded(junk, Encoding("mp3", 96)))


def test_an_m4a_s_embedded_cover_is_served_as_the_format_it_is(tmp_path):
    """iTunes embeds JPEG or PNG covers and says which; a PNG was answered as image/jpeg."""
    import io

    import numpy as np
    from mutagen.mp4 import MP4, MP4Cover
    from PIL import Image

    from api.media import _embedded
    from tests.audio_files import encode

    path = tmp_path / "song.m4a"
    path.write_bytes(encode(np.zeros(22050, np.float32), 22050, "m4a"))
    for fmt, kind, mime in (("PNG", MP4Cover.FORMAT_PNG, "image/png"), ("JPEG", MP4Cover.FORMAT_JPEG, "image/jpeg")):
        picture = io.BytesIO()
        Image.new("RGB", (8, 8), (10, 200, 30)).save(picture, format=fmt)
        media = MP4(path)
        media["covr"] = [MP4Cover(picture.getvalue(), imageformat=kind)]
        media.save()
        assert _embedded(path) == (picture.getvalue(), mime)


def test_a_time_offset_is_seconds_and_one_a_player_got_wrong_plays_from_the_top():
    from api.media import _seconds

    assert [_seconds(x) for x in ("12", "12.5", None, "", "-3", "nan", "inf", "abc", "1e30")] == [
        12.0, 12.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # fmt: skip


def test_a_song_s_replay_gain_is_in_its_entry_and_the_element_is_always_there(tmp_path):
    """OpenSubsonic's ``replayGain``: present on every song, with only the values the file's tags give."""
    from api.library import Library

    docs = [{"_id": 1, "title": "a", "replaygain_track_gain": -6.48, "replaygain_track_peak": 0.98,
             "replaygain_album_gain": float("nan"), "audio_path": str(tmp_path / "1.flac")},
            {"_id": 2, "title": "b", "audio_path": str(tmp_path / "2.flac")}]  # fmt: skip
    lib = Library(lambda: docs, tmp_path).fresh()
    assert lib.songs[1].entry()["replayGain"] == {"trackGain": -6.48, "trackPeak": 0.98}
    assert lib.songs[2].entry()["replayGain"] == {}
    body = envelope({"song": lib.songs[1].entry()})
    assert b'<replayGain trackGain="-6.48" trackPeak="0.98"/>' in encode(body, "xml", None)[0]
