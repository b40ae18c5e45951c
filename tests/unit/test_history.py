"""Listening-history exports (each format and its quirks) and matching them to the catalogue."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

import pytest

from history.formats import FormatError, Listen, detect, read_export
from history.match import Catalogue, Track, normalise

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 1, tzinfo=UTC)
T0 = 1_600_000_000  # 2020-09-13


def lb_listen(at, artist, title, album=None, **info) -> dict:
    meta = {"artist_name": artist, "track_name": title, "additional_info": info}
    if album is not None:
        meta["release_name"] = album
    return {"listened_at": at, "track_metadata": meta}


def lb_zip(listens: dict[str, list], feedback: list | None = None, extra: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("user.json", json.dumps({"user_name": "someone"}))
        for member, records in listens.items():
            z.writestr(member, "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
        if feedback is not None:
            z.writestr("feedback.jsonl", "\n".join(json.dumps(f) for f in feedback))
        for member, text in (extra or {}).items():
            z.writestr(member, text)
    return buf.getvalue()


def test_a_listenbrainz_zip_gives_its_listens_and_loved_and_hated_tracks():
    mbid = "28B50C59-77E4-4254-A0BD-16797DDAA3CA"
    content = lb_zip(
        {
            "listens/2023/1.jsonl": [lb_listen(T0, "Acid King", "2 Wheel Nation", "III", recording_mbid=mbid),
                                     lb_listen(T0 + 60, "Sigur Rós", "Hoppípolla"), "{not json"],  # fmt: skip
            "listens/2023/2.jsonl": [lb_listen(T0 + 120, "Björk", "Jóga", isrc="gbaaa9700001")],
        },
        feedback=[{"recording_mbid": mbid, "score": 1, "created": T0 + 5},
                  {"recording_mbid": "abc", "score": -1, "created": T0 + 6}, {"score": 0}],  # fmt: skip
    )
    assert detect("export.zip", content) == "listenbrainz-zip"
    listens, problems = read_export("export.zip", content, now=NOW)
    assert [(x.artist, x.title, x.kind) for x in listens] == [
        ("Acid King", "2 Wheel Nation", "listen"), ("Sigur Rós", "Hoppípolla", "listen"), ("Björk", "Jóga", "listen"),
        ("?", "?", "like"), ("?", "?", "dislike"),
    ]  # fmt: skip
    assert listens[0].recording_mbid == mbid.lower() and listens[0].album == "III" and listens[1].album == ""
    assert listens[2].isrc == "GBAAA9700001" and listens[3].recording_mbid == mbid.lower()
    assert [str(p) for p in problems] == [
        "export.zip!listens/2023/1.jsonl:3: not JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        "export.zip!feedback.jsonl:3: feedback needs a recording_mbid, a score of 1 or -1 and a created time",
    ]


def test_the_older_listenbrainz_json_array_and_the_mbid_mapping():
    record = lb_listen(T0, "A", "B")
    record["track_metadata"]["mbid_mapping"] = {"recording_mbid": "m-1"}
    content = json.dumps([record, {"listened_at": "soon", "track_metadata": {}}, 7]).encode()
    assert detect("listens.json", content) == "listenbrainz-json"
    listens, problems = read_export("listens.json", content, now=NOW)
    assert [x.recording_mbid for x in listens] == ["m-1"]
    assert [p.line for p in problems] == [2, 3] and "not a time" in problems[0].reason


def test_the_lastfm_csv_with_its_header_commas_quotes_utf8_and_duplicates():
    text = (
        "uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n"
        f'{T0},"13 Sep 2020, 12:26",Crosby, Stills & Nash,,"Déjà Vu",,"Teach Your Children",\n'
        f'{T0},"13 Sep 2020, 12:26","Crosby, Stills & Nash",,"Déjà Vu",,"Song ""Quoted"", Part 2",T-MBID\n'
        f'{T0},"13 Sep 2020, 12:26","Crosby, Stills & Nash",,"Déjà Vu",,"Song ""Quoted"", Part 2",T-MBID\n'
        f'{T0 + 9},"13 Sep 2020, 12:26",Nobody,,,,No Album,\n'
        "0,1 Jan 1970,Epoch,,,,Glitch,\n"
    )
    content = text.encode("utf-8")
    assert detect("scrobbles.csv", content) == "lastfm-csv"
    listens, problems = read_export("scrobbles.csv", content, now=NOW)
    assert [(x.artist, x.title, x.album, x.recording_mbid) for x in listens] == [
        ("Crosby, Stills & Nash", 'Song "Quoted", Part 2', "Déjà Vu", "t-mbid"),
        ("Crosby, Stills & Nash", 'Song "Quoted", Part 2', "Déjà Vu", "t-mbid"),  # a duplicate line is read too
        ("Nobody", "No Album", "", ""),
    ]
    assert [(p.line, p.reason) for p in problems] == [
        (2, "9 columns, not 8"),  # an unquoted comma in the artist
        (6, "timestamp 1970-01-01T00:00:00+00:00 is out of range (2002-10 to now)"),
    ]


def test_the_headerless_four_column_lastfm_csv():
    text = 'Radiohead,OK Computer,"Paranoid Android",31 Jan 2021 14:05\nMuse,,Uprising,31 Jan 2021 14:09\nx,y,z,later\n'
    assert detect("lastfm.csv", text.encode()) == "lastfm-csv4"
    listens, problems = read_export("lastfm.csv", text.encode(), now=NOW)
    assert [(x.artist, x.album, x.title, x.at) for x in listens] == [
        ("Radiohead", "OK Computer", "Paranoid Android", 1612101900), ("Muse", "", "Uprising", 1612102140),
    ]  # fmt: skip
    assert [(p.line, p.reason) for p in problems] == [(3, "date 'later' is not like '31 Jan 2021 14:05'")]


def test_a_csv_whose_lines_end_in_a_lone_carriage_return_reads_as_any_other():
    """A spreadsheet's "CSV (Macintosh)" ends lines with \r alone: the same listens, not the csv module's
    "new-line character seen in unquoted field"."""
    four = "Radiohead,OK Computer,Airbag,31 Jan 2021 14:05\rMuse,,Uprising,31 Jan 2021 14:09\r"
    listens, problems = read_export("lastfm.csv", four.encode(), now=NOW)
    assert [(x.artist, x.title, x.at) for x in listens] == [("Radiohead", "Airbag", 1612101900),
                                                            ("Muse", "Uprising", 1612102140)]  # fmt: skip
    assert not problems
    header = "uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid"
    listens, problems = read_export("lastfm.csv", f"{header}\r1612101900,x,Muse,,Drones,,Dig Down,\r".encode(),
                                    now=NOW)  # fmt: skip
    assert [(x.artist, x.album, x.title, x.at) for x in listens] == [("Muse", "Drones", "Dig Down", 1612101900)]
    assert not problems


def test_lastfm_recent_tracks_pages_skip_now_playing_and_like_a_loved_track_once():
    def track(at, name, loved="0", playing=False):
        t = {"artist": {"name": "Muse", "mbid": ""}, "name": name, "album": {"#text": "Drones"}, "mbid": "",
             "loved": loved, "date": {"uts": str(at), "#text": "..."}}  # fmt: skip
        if playing:
            del t["date"]
            t["@attr"] = {"nowplaying": "true"}
        return t

    pages = [{"recenttracks": {"track": [track(0, "Now", playing=True), track(T0 + 9, "Dead Inside", "1"),
                                         track(T0, "Dead Inside", "1"), {"name": "no date"}]}},  # fmt: skip
             {"recenttracks": {"track": [track(T0 - 9, "Psycho")]}}]
    content = json.dumps(pages).encode()
    assert detect("pages.json", content) == "lastfm-json"
    listens, problems = read_export("pages.json", content, now=NOW)
    assert [(x.title, x.kind, x.at) for x in listens] == [
        ("Dead Inside", "listen", T0 + 9), ("Dead Inside", "like", T0 + 9), ("Dead Inside", "listen", T0),
        ("Psycho", "listen", T0 - 9),
    ]  # fmt: skip
    assert [(p.line, p.reason) for p in problems] == [(4, "no date.uts")]


def test_a_file_that_is_no_export_says_which_formats_there_are():
    with pytest.raises(FormatError, match="not a listening-history export.*lastfm-csv.*--format"):
        detect("notes.txt", b"just some words\nand more")
    listens, problems = read_export("broken.zip", b"PK\x03\x04 and then nothing", now=NOW)
    assert not listens and "not a readable zip" in problems[0].reason


def test_the_normaliser_folds_case_accents_punctuation_credits_and_version_suffixes():
    same = [
        ("Beyoncé feat. JAY-Z", "beyonce"), ("BEYONCE", "beyonce"), ("Hey Jude - 2011 Remaster", "hey jude"),
        ("Hey Jude (Remastered 2009)", "hey jude"), ("Hey Jude [Mono]", "hey jude"), ("Don’t Stop", "dont stop"),
        ("Song (with Friend)", "song"), ("Song ft Someone - Radio Edit", "song"), ("Sigur Rós", "sigur ros"),
    ]  # fmt: skip
    for text, want in same:
        assert normalise(text) == want, text
    assert normalise("Dance With Me") == "dance with me" and normalise("Feat of Clay") == "feat of clay"
    assert normalise("AC/DC") == normalise("AC DC") and normalise("Simon & Garfunkel") == "simon and garfunkel"
    # Letters that do not decompose, folded as the catalogue's search folds them: a tag without them still matches.
    assert normalise("Røyksopp") == normalise("Royksopp") == "royksopp" and normalise("Mø") == "mo"


def test_matching_tries_mbid_then_isrc_then_names_and_breaks_a_tie_by_album():
    catalogue = Catalogue([
        Track(1, "Muse", "Uprising", "The Resistance", recording_mbid="M-1"),
        Track(2, "Muse", "Uprising", "Live at Rome", isrc="GB-1"),
        Track(3, "Beyoncé", "Halo", "I Am"),
    ])  # fmt: skip
    assert catalogue.match("x", "y", mbid="m-1") == (1, "mbid")
    assert catalogue.match("x", "y", isrc="gb-1") == (2, "isrc")
    assert catalogue.match("MUSE", "Uprising - 2009 Remaster") == (1, "name")  # the smallest id without an album
    assert catalogue.match("Muse", "Uprising", album="Live at Rome") == (2, "name")
    assert catalogue.match("Beyonce feat. Someone", "Halo") == (3, "name")
    assert catalogue.match("Muse", "Psycho") is None
    listens = [Listen(T0, "Muse", "Uprising"), Listen(T0, "Nobody", "Nothing"), Listen(T0, "Muse", "Uprising")]
    assert catalogue.match_many(listens) == [(1, "name"), None, (1, "name")]


def test_matched_listens_become_events_once_with_their_original_times():
    from collections import Counter

    from events.contract import check_event
    from history.events import event_id, listen_events, report, report_lines

    listens = [
        Listen(T0, "Muse", "Uprising"), Listen(T0, "Muse", "Uprising"),  # a duplicate line
        Listen(T0 + 60, "Muse", "Uprising", kind="like"), Listen(T0 + 90, "Nobody", "Nothing"),
        Listen(T0 + 99, "Nobody", "Else"),
    ]  # fmt: skip
    matches = [(1, "name"), (1, "name"), (1, "mbid"), None, None]
    problems = [read_export("x.csv", b"uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid\n1,2\n")[1][0]]
    events = listen_events("ana", listens, matches, "lastfm-csv")
    assert [(e["type"], e["track_id"], e["ts"]) for e in events] == [
        ("complete", 1, "2020-09-13T12:26:40.000Z"), ("like", 1, "2020-09-13T12:27:40.000Z"),
    ]  # fmt: skip
    assert events[0]["event_id"] == event_id("ana", "listen", T0, 1) != event_id("bo", "listen", T0, 1)
    assert listen_events("ana", listens, matches, "lastfm-csv") == events  # a second import: the same ids
    for e in events:  # the contract's shape (its time window is the live stream's: these are years old)
        assert check_event(e, now=datetime(2020, 9, 14, tzinfo=UTC), max_future_s=300) == e
        assert e["client"] == "import:lastfm-csv" and e["context"] == "history"
    unmatched = [x for x, m in zip(listens, matches, strict=True) if m is None]
    r = report(listens=len(listens), problems=len(problems), matched_by=Counter(m[1] for m in matches if m),
               unmatched=len(unmatched), events=len(events),
               top_artists=Counter(x.artist for x in unmatched).most_common(),
               top_tracks=[(a, t, n) for (a, t), n in Counter((x.artist, x.title) for x in unmatched).most_common()],
               first_problems=[str(p) for p in problems])  # fmt: skip
    assert (r["read"], r["listens"], r["problems"], r["matched"], r["unmatched"]) == (6, 5, 1, 3, 2)
    assert r["matched_by"] == {"mbid": 1, "isrc": 0, "name": 2} and (r["events"], r["repeated"]) == (2, 1)
    assert r["top_unmatched_artists"] == [{"artist": "Nobody", "listens": 2}]
    assert [t["title"] for t in r["top_unmatched_tracks"]] == ["Nothing", "Else"]
    assert any("Nobody (2)" in line for line in report_lines(r)) and "x.csv:2: 2 columns, not 8" in report_lines(r)[-1]


def test_an_export_spark_would_pass_over_is_refused_with_what_to_do(tmp_path):
    """Spark's file sources read no file whose name starts with '_' or '.': such an export was imported as
    nothing, without a word."""
    from conf.errors import JobInputError
    from spark_jobs.import_history import _checked

    for name in ("_listens.json", ".scrobbles.csv"):
        (tmp_path / name).write_text("{}")
        with pytest.raises(JobInputError, match="rename it"):
            _checked(str(tmp_path / name))
    (tmp_path / "listens.json").write_text("{}")
    assert _checked(str(tmp_path / "listens.json")) == str(tmp_path / "listens.json")
