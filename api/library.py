"""The catalogue as a player sees it: artists, albums and songs, built from the catalogue's tags and folders.

Ids are stable across re-ingests: a song's id is its catalogue id (``ingest``
derives it from the file's path in the library), an album's is ``al-`` and a
hash of its album artist and title, an artist's ``ar-`` and a hash of the name.
An album belongs to its album artist (the ``albumartist`` tag; "Various
Artists" for a compilation without one; else the track's artist), so a
compilation is one album, not one per track artist; a track artist who is not
the album artist is an artist too, whose albums include the ones they appear on.
An album's songs are in disc, then track order.
The whole catalogue is held in memory (a few hundred bytes a track: 106,574
tracks are about 60 MB) and read again from Mongo ``tracks`` every
:data:`REFRESH_S` seconds, so a new ingest shows without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from conf.settings import local_path
from connectors.audio import AUDIO_TYPES, in_library
from index.catalogue import folded

REFRESH_S = 60.0
log = logging.getLogger("earshot.api")
# The catalogue's ReplayGain fields -> the OpenSubsonic ``replayGain`` element's.
REPLAY_GAIN = {"replaygain_track_gain": "trackGain", "replaygain_album_gain": "albumGain",
               "replaygain_track_peak": "trackPeak", "replaygain_album_peak": "albumPeak"}  # fmt: skip
FIELDS = ("title", "artist_name", "album_title", "genre_top", "duration_s", "track_number", "year", "audio_path",
          "gone", "date_created", "album_artist", "disc_number", *REPLAY_GAIN)  # fmt: skip
NO_GAIN: dict[str, float] = {}


def _gains(doc: dict) -> dict[str, float]:
    """A catalogue document's ReplayGain as the ``replayGain`` element: only the values it has (the spec)."""
    found = {name: doc.get(key) for key, name in REPLAY_GAIN.items()}
    found = {name: float(v) for name, v in found.items() if isinstance(v, int | float) and math.isfinite(v)}
    return found or NO_GAIN


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


@dataclass
class Song:
    id: int
    title: str
    artist: str
    album: str
    genre: str | None
    duration: int | None
    track: int | None
    year: int | None
    path: str | None  # relative to the library root, when under it
    suffix: str | None
    size: int | None
    created: str | None
    location: str | None = None  # the catalogue's audio_path, as ingest wrote it
    album_artist: str | None = None  # the album's artist where the tags name one apart from the track's
    disc: int | None = None
    replay_gain: dict[str, float] = field(default_factory=lambda: NO_GAIN)  # the values the tags give

    @cached_property  # a song's names do not change: a reload makes new songs
    def artist_id(self) -> str:
        return "ar-" + short_hash(self.artist)

    @property
    def album_by(self) -> str:
        """Whose album this song is on: the album artist, else the song's own artist."""
        return self.album_artist or self.artist

    @cached_property
    def album_id(self) -> str:
        return "al-" + short_hash(self.album_by + "\x00" + self.album)

    @cached_property
    def searched(self) -> str:
        """Its title, artist and album as search compares them (:func:`folded`)."""
        return folded(f"{self.title} {self.artist} {self.album}")

    @property
    def bit_rate(self) -> int | None:
        """kb/s over the whole file, once its size is known (:meth:`Library.file_size`)."""
        return round(self.size * 8 / self.duration / 1000) if self.size and self.duration else None

    def entry(self, *, starred: str | None = None) -> dict:
        """The ``Child`` element a client reads for a song, without the fields it has no value for (the caller's
        own stars and ratings are added by :mod:`api.marks`)."""
        bit_rate = self.bit_rate
        out = {
            "id": str(self.id),
            "parent": self.album_id,
            "isDir": False,
            "title": self.title,
            "album": self.album,
            "artist": self.artist,
            "track": self.track,
            "discNumber": self.disc,
            "year": self.year,
            "genre": self.genre,
            "coverArt": self.album_id,
            "size": self.size,
            "contentType": AUDIO_TYPES.get(f".{self.suffix}") if self.suffix else None,
            "suffix": self.suffix,
            "duration": self.duration,
            "bitRate": bit_rate,
            "path": self.path,
            "isVideo": False,
            "albumId": self.album_id,
            "artistId": self.artist_id,
            "type": "music",
            "mediaType": "song",
            "created": self.created,
            "starred": starred,
            "replayGain": self.replay_gain,  # always there (the spec), with the values the file has
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class Album:
    id: str
    name: str
    artist: str
    artist_id: str
    songs: list[Song] = field(default_factory=list)

    @cached_property
    def searched(self) -> str:
        return folded(f"{self.name} {self.artist}")

    def entry(self) -> dict:
        years = [s.year for s in self.songs if s.year]
        genres = [s.genre for s in self.songs if s.genre]
        out = {
            "id": self.id,
            "name": self.name,
            "title": self.name,
            "artist": self.artist,
            "artistId": self.artist_id,
            "coverArt": self.id,
            "songCount": len(self.songs),
            "duration": sum(s.duration or 0 for s in self.songs),
            "created": min((s.created for s in self.songs if s.created), default=None),
            "year": min(years) if years else None,
            "genre": max(set(genres), key=genres.count) if genres else None,
            "isDir": True,
        }
        return out


@dataclass
class Artist:
    id: str
    name: str
    albums: list[Album] = field(default_factory=list)

    @cached_property
    def searched(self) -> str:
        return folded(self.name)

    def entry(self) -> dict:
        return {"id": self.id, "name": self.name, "albumCount": len(self.albums), "coverArt": self.id}

    def songs(self) -> list[Song]:
        """Their songs: every song of an album that is theirs, their own songs on the albums they appear on."""
        return [s for a in self.albums for s in a.songs if a.artist_id == self.id or s.artist_id == self.id]


class Library:
    """An in-memory view of the catalogue, refreshed in the background."""

    def __init__(self, load_docs, library_root: str | Path):
        self._load_docs = load_docs  # () -> iterable of Mongo tracks documents (FIELDS)
        self.root = Path(local_path(str(library_root)) or str(library_root)).resolve()
        self._lock = threading.Lock()
        self._loaded_at = 0.0
        self.songs: dict[int, Song] = {}
        self.albums: dict[str, Album] = {}
        self.artists: dict[str, Artist] = {}
        self.song_order: list[Song] = []  # by artist, album, track: the order lists and syncs page through
        self.album_order: list[Album] = []
        self.artist_order: list[Artist] = []

    @property
    def loaded(self) -> bool:
        return bool(self._loaded_at)

    def fresh(self) -> Library:
        """The catalogue, loaded by the first call; once older than REFRESH_S it is read again on a thread of its
        own while calls keep getting the last one (a full read of a large catalogue takes seconds)."""
        if not self._loaded_at:
            with self._lock:
                if not self._loaded_at:
                    self._reload()
        elif time.monotonic() - self._loaded_at > REFRESH_S and self._lock.acquire(blocking=False):
            threading.Thread(target=self._reload_in_background, name="earshot-library", daemon=True).start()
        return self

    def _reload(self) -> None:
        self._build(self._load_docs())
        self._loaded_at = time.monotonic()

    def _reload_in_background(self) -> None:
        try:
            self._reload()
        except Exception as exc:  # noqa: BLE001 - the last catalogue keeps serving; the next call tries again
            log.warning("catalogue not read again (%s); serving the last one", exc)
            self._loaded_at = time.monotonic() - REFRESH_S + 5.0
        finally:
            self._lock.release()

    def _song(self, d: dict) -> Song:
        location = d.get("audio_path") or ""
        found = local_path(location) if location else None
        local = Path(found) if found else None
        rel, size = None, None
        if local is not None:
            try:
                rel = str(local.resolve().relative_to(self.root))
            except ValueError:  # a file linked into the library: its path as the library names it
                within = in_library(str(local), str(self.root))
                rel = str(within.relative_to(self.root)) if within is not None and self.root in within.parents else None
        suffix = Path(location).suffix.lower().lstrip(".") or None
        created = d.get("date_created")
        return Song(
            id=int(d["_id"]),
            title=str(d.get("title") or f"Track {d['_id']}"),
            artist=str(d.get("artist_name") or "Unknown artist"),
            album=str(d.get("album_title") or "Unknown album"),
            genre=d.get("genre_top") or None,
            duration=int(round(d["duration_s"])) if d.get("duration_s") else None,
            track=d.get("track_number"),
            year=d.get("year"),
            path=rel,
            suffix=suffix,
            size=size,
            created=str(created) if created else None,
            location=location or None,
            album_artist=str(d["album_artist"]) if d.get("album_artist") else None,
            disc=d.get("disc_number"),
            replay_gain=_gains(d),
        )

    def _build(self, docs) -> None:
        songs, albums, artists = {}, {}, {}
        for d in docs:
            if d.get("gone"):
                continue
            s = self._song(d)
            songs[s.id] = s
            album = albums.get(s.album_id)
            if album is None:
                by = "ar-" + short_hash(s.album_by)
                album = albums[s.album_id] = Album(s.album_id, s.album, s.album_by, by)
                artists.setdefault(by, Artist(by, s.album_by)).albums.append(album)
            if s.artist_id != album.artist_id:  # a guest on someone else's album (a compilation's track artist)
                guest = artists.setdefault(s.artist_id, Artist(s.artist_id, s.artist))
                if all(a is not album for a in guest.albums):
                    guest.albums.append(album)
            album.songs.append(s)
        for album in albums.values():
            album.songs.sort(key=lambda s: (s.disc or 1, s.track or 10**6, s.title.lower(), s.id))
        for artist in artists.values():
            artist.albums.sort(key=lambda a: a.name.lower())
        song_order = sorted(
            songs.values(), key=lambda s: (s.album_by.lower(), s.album.lower(), s.disc or 1, s.track or 0, s.id)
        )
        album_order = sorted(albums.values(), key=lambda a: (a.artist.lower(), a.name.lower()))
        artist_order = sorted(artists.values(), key=lambda a: a.name.lower())
        self.songs, self.albums, self.artists = songs, albums, artists  # swapped whole: readers see one view
        self.song_order, self.album_order, self.artist_order = song_order, album_order, artist_order

    def file_size(self, song: Song) -> int | None:
        if song.size is None and song.path:
            try:
                song.size = (self.root / song.path).stat().st_size
            except OSError:
                return None
        return song.size
