"""Listening-history exports read into listens: ListenBrainz's zip or JSON, Last.fm's CSVs and JSON pages.

Pure: bytes in, :class:`Listen` and :class:`Problem` rows out (the import job reads the files, on
executors for many of them). The format is recognised from the content (:func:`detect`); a caller
may name it instead. Every line that cannot be a listen becomes a :class:`Problem` with the file,
the line and the reason, and the good lines of the same file still count.

- ``listenbrainz-zip``: the export zip, ``listens/YYYY/M.jsonl`` (one listen a line) and
  ``feedback.jsonl`` (score 1: loved, a like; -1: hated, a dislike; by recording MBID);
- ``listenbrainz-json``: the older export, one JSON array of listens;
- ``lastfm-csv``: the 8-column CSV with a header ``uts, utc_time, artist, artist_mbid, album,
  album_mbid, track, track_mbid``;
- ``lastfm-csv4``: the headerless 4-column CSV ``artist, album, track, date`` (``31 Jan 2021 14:05``);
- ``lastfm-json``: ``user.getRecentTracks`` pages (one page, or an array of them; ``loved: "1"``
  with ``extended=1`` marks a like).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

FORMATS = ("listenbrainz-zip", "listenbrainz-json", "lastfm-csv", "lastfm-csv4", "lastfm-json")
EARLIEST = 1_033_430_400  # 2002-10-01, ListenBrainz's own floor: before it, a clock that was never set
LATEST_AHEAD_S = 86_400  # a listen may be a day ahead of the importer's clock (time zones), not more
LASTFM_HEADER = ("uts", "utc_time", "artist", "artist_mbid", "album", "album_mbid", "track", "track_mbid")


@dataclass(frozen=True)
class Listen:
    """One listen (or a loved or hated track: ``kind`` like or dislike) as the export says it."""

    at: int  # seconds since 1970, UTC
    artist: str
    title: str
    album: str = ""
    recording_mbid: str = ""
    isrc: str = ""
    kind: str = "listen"  # listen | like | dislike
    source: str = ""  # the file (``export.zip!listens/2023/1.jsonl`` inside a zip)
    line: int = 0  # 1-based line (or record) in it


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


class FormatError(ValueError):
    """A file that is no export this module reads; the message says which formats it does read."""


def detect(name: str, content: bytes) -> str:
    """The format of ``content`` (``name`` is only for the message), from the bytes themselves."""
    if content[:4] == b"PK\x03\x04":
        return "listenbrainz-zip"
    text = content[:4096].decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith(("[", "{")):
        if '"recenttracks"' in text or ('"track"' in text and '"#text"' in text):
            return "lastfm-json"
        if '"listened_at"' in text or '"track_metadata"' in text:
            return "listenbrainz-json"
    first = next(csv.reader(io.StringIO(text.splitlines()[0] if text else "")), [])
    if tuple(c.strip().lower() for c in first) == LASTFM_HEADER:
        return "lastfm-csv"
    if len(first) == 4:
        return "lastfm-csv4"
    raise FormatError(
        f"{name}: not a listening-history export this importer reads ({', '.join(FORMATS)}); name one with --format"
    )


def read_export(
    name: str, content: bytes, *, fmt: str | None = None, now: datetime | None = None
) -> tuple[list[Listen], list[Problem]]:
    """Every listen of one export file, and a :class:`Problem` for each line that is not one."""
    fmt = fmt or detect(name, content)
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; the formats are {', '.join(FORMATS)}")
    latest = int((now or datetime.now(UTC)).timestamp()) + LATEST_AHEAD_S
    listens, problems = [], []
    for item in READERS[fmt](name, content):
        if isinstance(item, Problem):
            problems.append(item)
        elif not EARLIEST <= item.at <= latest:
            when = datetime.fromtimestamp(item.at, UTC).isoformat() if -10**11 < item.at < 10**11 else str(item.at)
            problems.append(Problem(item.source, item.line, f"timestamp {when} is out of range (2002-10 to now)"))
        elif not item.artist.strip() or not item.title.strip():
            problems.append(Problem(item.source, item.line, "no artist or no title"))
        else:
            listens.append(item)
    return listens, problems


# ---------------------------------------------------------------- ListenBrainz


def _listenbrainz_zip(name: str, content: bytes) -> Iterator[Listen | Problem]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        yield Problem(name, 0, f"not a readable zip: {exc}")
        return
    for member in sorted(m for m in members if m.endswith(".jsonl") and "listens" in m.rsplit("/", 1)[0]):
        source = f"{name}!{member}"
        for number, line in enumerate(archive.read(member).decode("utf-8", errors="replace").splitlines(), 1):
            if line.strip():
                yield _lb_listen(_json_line(line), source, number)
    if "feedback.jsonl" in members:
        source = f"{name}!feedback.jsonl"
        for number, line in enumerate(archive.read("feedback.jsonl").decode("utf-8", errors="replace").splitlines(), 1):
            if line.strip():
                yield _lb_feedback(_json_line(line), source, number)


def _listenbrainz_json(name: str, content: bytes) -> Iterator[Listen | Problem]:
    records = _whole_json(name, content)
    if isinstance(records, Problem):
        yield records
        return
    if not isinstance(records, list):
        yield Problem(name, 0, "a ListenBrainz JSON export is an array of listens")
        return
    for number, record in enumerate(records, 1):
        yield _lb_listen(record, name, number)


def _whole_json(name: str, content: bytes):
    """A whole file's JSON value, or the :class:`Problem` that it is none."""
    try:
        return json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Problem(name, 0, f"not JSON: {exc}")


def _json_line(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        return exc


def _lb_listen(record, source: str, line: int) -> Listen | Problem:
    if isinstance(record, Exception):
        return Problem(source, line, f"not JSON: {record}")
    meta = record.get("track_metadata") if isinstance(record, dict) else None
    if not isinstance(meta, dict):
        return Problem(source, line, "no track_metadata")
    info = meta.get("additional_info") if isinstance(meta.get("additional_info"), dict) else {}
    mapping = meta.get("mbid_mapping") if isinstance(meta.get("mbid_mapping"), dict) else {}
    at = _int(record.get("listened_at"))
    if at is None:
        return Problem(source, line, f"listened_at {str(record.get('listened_at'))[:30]!r} is not a time")
    mbid = info.get("recording_mbid") or mapping.get("recording_mbid") or ""
    isrc = info.get("isrc") or ""
    return Listen(at, _text(meta.get("artist_name")), _text(meta.get("track_name")), _text(meta.get("release_name")),
                  _text(mbid).lower(), _text(isrc).upper(), "listen", source, line)  # fmt: skip


def _lb_feedback(record, source: str, line: int) -> Listen | Problem:
    if isinstance(record, Exception) or not isinstance(record, dict):
        return Problem(source, line, f"not a feedback record: {str(record)[:60]}")
    kind = {1: "like", -1: "dislike"}.get(_int(record.get("score")))
    mbid = _text(record.get("recording_mbid")).lower()
    at = _int(record.get("created"))
    if kind is None or not mbid or at is None:
        return Problem(source, line, "feedback needs a recording_mbid, a score of 1 or -1 and a created time")
    meta = record.get("track_metadata") if isinstance(record.get("track_metadata"), dict) else {}
    # Feedback names its recording by MBID alone (titles only where the export adds them).
    return Listen(at, _text(meta.get("artist_name")) or "?", _text(meta.get("track_name")) or "?",
                  _text(meta.get("release_name")), mbid, "", kind, source, line)  # fmt: skip


# ---------------------------------------------------------------- Last.fm


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    """The rows of a CSV export, whatever its line ends: \n, \r\n, or a lone \r (a spreadsheet's "CSV
    (Macintosh)", on which the csv module stops with "new-line character seen in unquoted field")."""
    return csv.reader(io.StringIO(content.decode("utf-8-sig", errors="replace"), newline=None))


def _lastfm_csv(name: str, content: bytes) -> Iterator[Listen | Problem]:
    rows = _csv_rows(content)
    for number, row in enumerate(rows, 1):
        if number == 1 or not any(c.strip() for c in row):
            continue
        if len(row) != len(LASTFM_HEADER):
            yield Problem(name, number, f"{len(row)} columns, not {len(LASTFM_HEADER)}")
            continue
        uts, _, artist, _, album, _, title, track_mbid = row
        at = _int(uts)
        if at is None:
            yield Problem(name, number, f"uts {uts[:30]!r} is not a time")
            continue
        yield Listen(at, artist.strip(), title.strip(), album.strip(), track_mbid.strip().lower(), "", "listen",
                     name, number)  # fmt: skip


def _lastfm_csv4(name: str, content: bytes) -> Iterator[Listen | Problem]:
    rows = _csv_rows(content)
    for number, row in enumerate(rows, 1):
        if not any(c.strip() for c in row):
            continue
        if len(row) != 4:
            yield Problem(name, number, f"{len(row)} columns, not 4 (artist, album, track, date)")
            continue
        artist, album, title, date = row
        try:
            at = int(datetime.strptime(date.strip(), "%d %b %Y %H:%M").replace(tzinfo=UTC).timestamp())
        except ValueError:
            yield Problem(name, number, f"date {date[:30]!r} is not like '31 Jan 2021 14:05'")
            continue
        yield Listen(at, artist.strip(), title.strip(), album.strip(), "", "", "listen", name, number)


def _lastfm_json(name: str, content: bytes) -> Iterator[Listen | Problem]:
    data = _whole_json(name, content)
    if isinstance(data, Problem):
        yield data
        return
    pages = data if isinstance(data, list) else [data]
    number, loved = 0, set()
    for page in pages:
        page = page.get("recenttracks", page) if isinstance(page, dict) else {}
        tracks = page.get("track", []) if isinstance(page, dict) else []
        for track in tracks if isinstance(tracks, list) else [tracks]:
            number += 1
            item = _lastfm_track(track, name, number)
            if item is None:
                continue
            yield item
            # A loved track is loved at every listen of it: one like, at its newest listen (pages run newest first).
            key = (item.artist, item.title) if isinstance(item, Listen) else None
            if key and str(track.get("loved", "0")) == "1" and key not in loved:
                loved.add(key)
                yield dataclasses.replace(item, kind="like")


def _lastfm_track(track, source: str, number: int) -> Listen | Problem | None:
    if not isinstance(track, dict):
        return Problem(source, number, "a track is a JSON object")
    if (track.get("@attr") or {}).get("nowplaying") == "true":
        return None  # playing when the page was fetched: not a listen yet
    at = _int((track.get("date") or {}).get("uts") if isinstance(track.get("date"), dict) else None)
    if at is None:
        return Problem(source, number, "no date.uts")
    artist = track.get("artist")
    artist = artist.get("#text") or artist.get("name") if isinstance(artist, dict) else artist
    album = track.get("album")
    album = album.get("#text") if isinstance(album, dict) else album
    return Listen(at, _text(artist), _text(track.get("name")), _text(album), _text(track.get("mbid")).lower(), "",
                  "listen", source, number)  # fmt: skip


# ---------------------------------------------------------------- helpers


def _int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


READERS = {
    "listenbrainz-zip": _listenbrainz_zip,
    "listenbrainz-json": _listenbrainz_json,
    "lastfm-csv": _lastfm_csv,
    "lastfm-csv4": _lastfm_csv4,
    "lastfm-json": _lastfm_json,
}
