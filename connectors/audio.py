"""A catalogued track's audio file, by catalogue id only: what the dashboard and the API serve.

The path comes from the catalogue (Mongo ``tracks.audio_path``), never from a
request, and must lie under ``paths.library_root`` with a known audio suffix;
anything else is refused with :class:`AudioRefused`, and nothing is read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from conf.settings import Settings, is_uri, local_path

AUDIO_TYPES = {
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".aiff": "audio/aiff",
    ".aif": "audio/aiff",
    ".m4a": "audio/mp4",  # AAC or ALAC in MP4: what iTunes and Apple Music rip and sell
    ".aac": "audio/aac",
    ".wma": "audio/x-ms-wma",
}  # the audio a library may hold: ingest catalogues these suffixes, extract decodes them (udfs.audio)


# A folder that holds one disc of an album: "CD1", "CD 2", "Disc 1", "Disk 02", "Disc 1 - The Early Years", "[CD2]",
# "CD1 (Bonus)".
DISC_FOLDER = re.compile(r"^[\[(]?\s*(?:cd|disc|disk)\s*[-_.]?\s*(\d{1,3})\s*[\])]?(?:[\s\-:_(\[].*)?$", re.IGNORECASE)


def disc_folder(name: str) -> int | None:
    """The disc number a folder's name gives (``Album/CD2/01 Song.flac``), None for any other folder."""
    found = DISC_FOLDER.match(name.strip())
    return int(found.group(1)) if found else None


class AudioRefused(ValueError):
    """The audio of a track cannot be served; the message says why."""


def track_number(track_id: object) -> int:
    """A catalogue id from a request value (an int, or a string of digits), else :class:`AudioRefused`."""
    if isinstance(track_id, bool) or not isinstance(track_id, (int, str)) and not hasattr(track_id, "__index__"):
        raise AudioRefused(f"audio is served by catalogue id only, not {track_id!r}")
    if isinstance(track_id, str) and not (track_id.isascii() and track_id.isdigit() and len(track_id) <= 19):
        raise AudioRefused(f"audio is served by catalogue id only, not {track_id!r}")
    return int(track_id)


def audio_path(db, settings: Settings, track_id: object) -> tuple[Path, str]:
    """The file of a catalogued track and its MIME type, looked up in Mongo ``tracks``."""
    tid = track_number(track_id)
    doc = db["tracks"].find_one({"_id": tid}, {"audio_path": 1})
    if not doc or not doc.get("audio_path"):
        raise AudioRefused(f"track {tid} is not in the catalogue")
    return checked_file(doc["audio_path"], settings, what=f"track {tid}'s audio")


def checked_file(location: str | None, settings: Settings, *, what: str = "the audio") -> tuple[Path, str]:
    """A catalogue location as a readable local file under the library root with a known audio suffix."""
    if not location:
        raise AudioRefused(f"{what} has no file")
    if is_uri(location) and not location.startswith("file:"):
        raise AudioRefused(f"{what} is at {location}, which this server cannot read")
    path = in_library(local_path(location) or location, settings.paths.library_root)
    if path is None or path.suffix.lower() not in AUDIO_TYPES or not path.is_file():
        raise AudioRefused(f"{what}'s file is not available")
    return path, AUDIO_TYPES[path.suffix.lower()]


def in_library(location: str, library_root: str) -> Path | None:
    """``location`` as an absolute path under the library folder, else None. ``..`` is resolved, links are not:
    an album linked into the library from another disk is the library's (as its owner put it there), while a
    path that climbs out of the folder is not. The folder itself may be a link, or be named through one."""
    path = Path(os.path.abspath(local_path(location) or location))
    root = local_path(library_root) or library_root
    roots = {Path(os.path.abspath(root)), Path(root).resolve()}
    return path if any(root in path.parents for root in roots) else None
