"""ingest's playlists: the ``.m3u`` and ``.m3u8`` files of a library folder, as playlists every listener sees.

A library often holds the playlists an earlier player wrote (foobar2000, Winamp, MusicBee, VLC, another
server's export): one path per line, relative to the playlist's folder, absolute, or a ``file://`` URL, with
Windows' backslashes where it was written there; ``#EXTM3U``, ``#EXTINF`` and other ``#`` lines are passed
over. Each entry is matched to a catalogued file (of any folder ingested) by its path; else by the same path in any
letter case, as Windows reads it; else by its last two folders and its name, for a playlist written on
another machine. An entry that matches nothing (a file not catalogued, a stream's URL) is counted, not
kept. ``.m3u8`` is UTF-8; a ``.m3u`` is read as UTF-8, else as Windows' Latin-1 (cp1252).

They are written to Mongo ``playlists`` as read-only playlists of the library (``connectors.playlists``
``library_document``), replaced on every ingest of the folder; one whose file is gone is removed. Only a
folder on the local disk is looked through.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from conf.settings import Settings, local_path
from connectors import files as files_mod
from connectors import mongo_io
from connectors import playlists as store

SUFFIXES = (".m3u", ".m3u8")
TAIL = 3  # parts of a path matched when the whole is not: two folders (artist, album) and the file's name


def playlist_files(folder: str) -> list[Path]:
    """The playlist files under a local ``folder`` (dot-names left out), in a stable order; [] elsewhere."""
    local = local_path(folder)
    if local is None or not os.path.isdir(local):
        return []
    found = []
    for here, dirs, names in os.walk(os.path.abspath(local)):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(here) / n for n in sorted(names) if not n.startswith(".") and n.lower().endswith(SUFFIXES)]
    return [p for p in found if files_mod.is_utf8(p)]  # a name that is not UTF-8 cannot be a playlist's in Mongo


def entries(data: bytes, *, utf8_only: bool) -> list[str]:
    """The path lines of a playlist's bytes (a BOM, blank lines and ``#`` lines left out)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig" if utf8_only else "cp1252", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def resolve(entry: str, here: Path) -> str | None:
    """An entry as a normalized absolute path (relative ones from the playlist's folder ``here``); None for a
    URL that is not a local file's."""
    if "://" in entry or entry.startswith("file:"):
        url = urlparse(entry)
        if url.scheme != "file":
            return None
        entry = unquote(url.path)
    entry = entry.replace("\\", "/")
    if len(entry) > 1 and entry[1] == ":":  # a Windows drive ("D:/Music/x.mp3"): matched by what follows it
        entry = entry[2:]
    path = entry if entry.startswith("/") else os.path.join(here, entry)
    return os.path.normpath(path)


class Catalogue:
    """A folder's catalogued files for matching entries: by path, by path in any case, and by their last
    :data:`TAIL` path parts (a playlist written on another machine: ``D:\\Music\\Artist\\Album\\01.mp3``), where
    one file alone has them."""

    def __init__(self, tracks: dict[str, int]):
        self.tracks = tracks
        self.folded = {p.casefold(): t for p, t in tracks.items()}
        self.tails: dict[str, int | None] = {}
        for path, track in self.folded.items():
            key = "/".join(path.split("/")[-TAIL:])
            self.tails[key] = track if key not in self.tails else None  # two files: no answer

    def track(self, path: str | None) -> int | None:
        if path is None:
            return None
        found = self.tracks.get(path)
        if found is None:
            found = self.folded.get(path.casefold())
        if found is None:
            found = self.tails.get("/".join(path.casefold().split("/")[-TAIL:]))
        return found


def matched(paths: list[str | None], catalogue: Catalogue) -> list[int]:
    """The catalogued track of each path that has one, in order."""
    return [t for t in (catalogue.track(p) for p in paths) if t is not None]


def write(settings: Settings, folder: str, catalogue: Callable[[], dict[str, int]]) -> tuple[int, int, int]:
    """Read the folder's playlists and replace its library playlists in Mongo; (playlists, entries, found).

    ``catalogue()``: each catalogued local file by its absolute path -> track id (asked only when the folder
    has a playlist).
    """
    local = local_path(folder)
    if local is None:  # HDFS, S3: not looked through
        return 0, 0, 0
    files, root = playlist_files(folder), os.path.abspath(local)
    known = Catalogue(catalogue() if files else {})
    docs, total, found = [], 0, 0
    for path in files:
        try:
            lines = entries(path.read_bytes(), utf8_only=path.suffix.lower() == ".m3u8")
            changed = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        except OSError:
            continue
        tracks = matched([resolve(line, path.parent) for line in lines], known)
        total, found = total + len(lines), found + len(tracks)
        docs.append(store.library_document(root, str(path.relative_to(root)), tracks, changed=changed))
    with mongo_io.connect(settings) as client:
        store.replace_library(mongo_io.database(client, settings), root, docs)
    return len(docs), total, found
