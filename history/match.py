"""Listens matched to the catalogue: by recording MBID, then ISRC, then normalised artist and title.

:func:`normalise` folds what differs between how a service and a file's tags write one recording:
case, accents, punctuation, "feat." credits, and version suffixes such as "- 2011 Remaster" or
"(Remastered 2009)". :class:`Catalogue` indexes the catalogue once; :meth:`Catalogue.match` says
for each listen which track it is and by which rule, the album breaking a tie between tracks of
one artist and title. Pure: the import job builds the catalogue from the serving store's tracks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from index.catalogue import folded

RULES = ("mbid", "isrc", "name")  # in the order they are tried
# A credit after the name: "feat. X", "ft X", "featuring X" anywhere after it; "with X" only in brackets.
FEATURING = re.compile(r"(?<=\S)\s*(?:[\(\[]\s*)?\b(?:feat|ft|featuring)\b\.?\s.*$|(?<=\S)\s*[\(\[]\s*with\s.*$",
                       re.IGNORECASE)  # fmt: skip
VERSION = re.compile(
    r"\s*(?:-\s*|[\(\[]\s*)(?:\d{4}\s+)?(?:digital(?:ly)?\s+)?(?:remaster(?:ed)?|re-?master(?:ed)?|mono|stereo|"
    r"single|radio|album|original)(?:\s+(?:version|mix|edit|\d{4}))*(?:\s+\d{4})?\s*[\)\]]?\s*$",
    re.IGNORECASE,
)
PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalise(text: str) -> str:
    """A name as a key: "Beyoncé feat. JAY-Z" -> "beyonce", "Song - 2011 Remaster" -> "song"."""
    text = folded(text or "")  # case and accents, as the catalogue's search folds them
    text = text.replace("&", " and ").replace("'", "").replace("\u2019", "")  # "Don't" and "Don’t" are "dont"
    for _ in range(2):  # "Song (feat. X) - 2011 Remaster": both go
        text = VERSION.sub("", FEATURING.sub("", text))
    text = PUNCTUATION.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Track:
    track_id: int
    artist: str
    title: str
    album: str = ""
    recording_mbid: str = ""
    isrc: str = ""


class Catalogue:
    """The catalogue's tracks by MBID, by ISRC and by normalised (artist, title)."""

    def __init__(self, tracks: Iterable[Track]):
        self.by_mbid: dict[str, int] = {}
        self.by_isrc: dict[str, int] = {}
        self.by_name: dict[tuple[str, str], list[tuple[str, int]]] = {}
        for t in tracks:
            if t.recording_mbid:
                self.by_mbid.setdefault(t.recording_mbid.lower(), t.track_id)
            if t.isrc:
                self.by_isrc.setdefault(t.isrc.upper(), t.track_id)
            key = (normalise(t.artist), normalise(t.title))
            if all(key):
                self.by_name.setdefault(key, []).append((normalise(t.album), t.track_id))
        for candidates in self.by_name.values():
            candidates.sort(key=lambda c: c[1])  # the smallest id first: the same answer every time

    def match(self, artist: str, title: str, album: str = "", mbid: str = "", isrc: str = "") -> tuple[int, str] | None:
        """(track id, rule) of the catalogued recording a listen is, or None."""
        if mbid and mbid.lower() in self.by_mbid:
            return self.by_mbid[mbid.lower()], "mbid"
        if isrc and isrc.upper() in self.by_isrc:
            return self.by_isrc[isrc.upper()], "isrc"
        candidates = self.by_name.get((normalise(artist), normalise(title)))
        if not candidates:
            return None
        wanted = normalise(album)
        for found_album, track_id in candidates:
            if wanted and found_album == wanted:
                return track_id, "name"
        return candidates[0][1], "name"

    def match_many(self, listens: Sequence) -> list[tuple[int, str] | None]:
        """:meth:`match` for each listen (anything with artist, title, album, recording_mbid and isrc)."""
        cache: dict[tuple, tuple[int, str] | None] = {}
        out = []
        for x in listens:
            key = (x.artist, x.title, x.album, x.recording_mbid, x.isrc)
            if key not in cache:
                cache[key] = self.match(*key)
            out.append(cache[key])
        return out
