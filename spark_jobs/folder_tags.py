"""ingest's folder mode, file by file: a catalogue row from a file's tags (mutagen) or its place in the folder.

Tags are read under each format's names (:data:`TAG_NAMES`: ID3, Vorbis comments, MP4 atoms, ASF attributes),
falling back to the folder layout (``Artist/Album/NN Title.ext``, ``Album/Title.ext``, ``Artist - Title.ext``).
A file's id is a hash of its path under the folder (:func:`stable_track_id`), so a library moved elsewhere keeps
its ids; ``spark_jobs.ingest`` keeps two folders' files with the same relative path apart.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from conf.settings import local_path
from connectors.audio import disc_folder


def stable_track_id(relative_path: str) -> int:
    """A positive 62-bit id from a path relative to the library folder: stable across runs."""
    return int.from_bytes(hashlib.sha1(relative_path.encode()).digest()[:8], "big") >> 2


def relative(path: str, root: str) -> str:
    """``path`` under the library folder ``root`` (its file name where it is not under it). A local folder may be
    named as a plain path or a ``file:`` URI in any of its forms (``file:///music``, while Spark's rows say
    ``file:/music/...``): before, such a folder's files were all taken as not under it, so every album's
    ``01.mp3`` had one id."""
    here, top = local_path(path) or path, (local_path(root) or root).rstrip("/")
    return here[len(top) + 1 :] if here.startswith(top + "/") else here.rsplit("/", 1)[-1]


def track_ids(
    files: Mapping[str, str], catalogue: Iterable[tuple[int, str, bool]], exists: Callable[[str], bool]
) -> dict[str, int]:
    """Each file's id (``files``: path -> path under its folder; ``catalogue``: (id, path, gone) of the folder
    tracks catalogued before; ``exists``: whether a path's file is there now).

    In order: the id the catalogue gives the file's path; the id of a catalogued file with the same relative
    path whose file is gone (the library was moved or renamed: its listeners' history follows), the file's own
    hash first; that hash when no other file holds it; else the hash of its whole path (another folder in the
    catalogue has a file at the same relative path). Deeper relative paths choose first, so ``x/a/b.mp3`` is
    not taken over by ``a/b.mp3``; no two files get one id.
    """
    by_path: dict[str, int] = {}
    holder: dict[int, tuple[str, bool]] = {}
    by_name: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for tid, path, gone in sorted(catalogue, key=lambda row: (row[2], row[0])):  # a live row's id first
        by_path.setdefault(path, tid)
        holder[tid] = (path, gone)
        by_name[path.rsplit("/", 1)[-1]].append((tid, path))
    out = {path: by_path[path] for path in files if path in by_path}
    taken = set(out.values())
    checked: dict[str, bool] = {}

    def there(path: str) -> bool:
        if path not in checked:
            checked[path] = exists(path)
        return checked[path]

    for path in sorted((p for p in files if p not in out), key=lambda p: (-files[p].count("/"), p)):
        rel = files[path]
        own = stable_track_id(rel)
        same = [tid for tid, old in by_name[rel.rsplit("/", 1)[-1]] if old.endswith("/" + rel) and tid != own]
        moved = [tid for tid in (own, *same) if tid in holder and tid not in taken]
        moved = [tid for tid in moved if holder[tid][1] or not there(holder[tid][0])]
        if moved:
            out[path] = moved[0]
        elif own not in holder and own not in taken:
            out[path] = own
        else:
            out[path] = stable_track_id(path)
        taken.add(out[path])
    return out


LEADING_NUMBER = re.compile(r"^\s*(\d{1,3})\s*(?:[-.)_]\s*|\s+)(?=\S)")


def leading_int(text: str | None) -> int | None:
    """The number a tag or file name starts with ("3/12" -> 3, "2012-12-15" -> 2012, "03 Title" -> 3)."""
    found = re.match(r"\s*(\d{1,4})", text or "")
    return int(found.group(1)) if found else None


def layout_guess(rel: str) -> dict[str, str | int | None]:
    """Artist, album, title and disc from a path relative to the library folder, for files without tags.

    ``Artist/Album/NN Title.ext`` gives the first three (the track number is dropped from the title),
    ``Album/Title.ext`` the album, and a bare ``Artist - Title.ext`` file name the artist. Deeper paths use
    their last two folders, passing over a disc's folder (``Artist/Album/CD2/NN Title.ext``: disc 2).
    """
    parts = [p for p in rel.split("/") if p]
    stem = parts[-1].rsplit(".", 1)[0] if parts else rel
    folders = parts[:-1]
    disc = disc_folder(folders[-1]) if len(folders) >= 2 else None
    if disc is not None:
        folders = folders[:-1]
    title = LEADING_NUMBER.sub("", stem) or stem
    artist, album = None, None
    if len(folders) >= 2:
        artist, album = folders[-2], folders[-1]
    elif len(folders) == 1:
        album = folders[0]
    guess_artist, sep, guess_title = title.partition(" - ")
    if sep and guess_title:
        artist, title = artist or guess_artist, guess_title
    return {"artist": artist, "album": album, "title": title, "disc": disc}


# Each catalogue tag under mutagen's easy name (MP3's ID3, Vorbis comments, FLAC, MP4), then what the formats
# without easy names call it: ASF (.wma) and ID3 frames outside MP3 (AIFF, WAV).
TAG_NAMES = {
    "title": ("title", "Title", "TIT2"),
    "artist": ("artist", "Author", "TPE1"),
    "album": ("album", "WM/AlbumTitle", "TALB"),
    "genre": ("genre", "WM/Genre", "TCON"),
    "tracknumber": ("tracknumber", "WM/TrackNumber", "TRCK"),
    "date": ("date", "WM/Year", "TDRC", "TYER"),
    "musicbrainz_trackid": ("musicbrainz_trackid", "MusicBrainz/Track Id", "UFID:http://musicbrainz.org"),
    "isrc": ("isrc", "WM/ISRC", "TSRC"),
    "albumartist": ("albumartist", "WM/AlbumArtist", "TPE2"),
    "discnumber": ("discnumber", "WM/PartOfSet", "TPOS"),
    "compilation": ("compilation", "WM/IsCompilation", "TCMP"),
}
# ReplayGain, as foobar2000, beets, mp3gain and loudgain write it: Vorbis comments and APE-style names (FLAC,
# Ogg, WMA), ID3 TXXX frames in either case (MP3 through the easy names registered in read_tags; AIFF, WAV
# raw), iTunes freeform atoms (.m4a); Opus files carry R128 gains instead (:data:`R128`).
for _what in ("track_gain", "album_gain", "track_peak", "album_peak"):
    TAG_NAMES[f"replaygain_{_what}"] = (f"replaygain_{_what}", f"rg_{_what}", f"rg_{_what}_lower",
                                        f"TXXX:REPLAYGAIN_{_what.upper()}", f"TXXX:replaygain_{_what}")  # fmt: skip
R128 = {"replaygain_track_gain": "r128_track_gain", "replaygain_album_gain": "r128_album_gain"}
for _gain in R128.values():
    TAG_NAMES[_gain] = (_gain,)
VARIOUS = "Various Artists"  # a compilation's album artist when its tags name none


def tag_text(value: object) -> str:
    """One tag value as text: the first of a list, an ID3 frame's first text (a UFID's data), bytes as UTF-8."""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    text = getattr(value, "text", None)
    if isinstance(text, list):
        value = text[0] if text else ""
    elif getattr(value, "data", None) is not None and not isinstance(value, bytes):
        value = value.data
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def file_tags(audio) -> dict[str, str]:
    """The catalogue's tags of a mutagen file, by :data:`TAG_NAMES`; a key absent or blank is left out."""
    found: dict[str, str] = {}
    tags = getattr(audio, "tags", None)
    if not tags:
        return found
    for key, names in TAG_NAMES.items():
        for name in names:
            try:
                value = tags.get(name) if hasattr(tags, "get") else None
            except (KeyError, ValueError):  # an easy-tag wrapper refuses a name it does not map
                value = None
            text = tag_text(value) if value else ""
            if text:
                found[key] = text
                break
    return found


def _mp4_compilation(tags, key: str) -> list[str]:
    if not tags.get("cpil"):
        raise KeyError(key)
    return ["1"]


NUMBER = re.compile(r"^\s*([+\-\u2212]?\d+(?:[.,]\d+)?)")


def replay_gain(tags: dict[str, str]) -> dict[str, float | None]:
    """The four ReplayGain values of a file's tags in dB and as a peak's fraction of full scale ("-6.48 dB",
    "0.988525"); an Opus file's R128 gain (Q7.8 dB against -23 LUFS) moved to ReplayGain's -18 LUFS. A value
    that does not read as a number, or a peak that is not positive, is left out (None)."""
    out: dict[str, float | None] = {}
    for key in ("replaygain_track_gain", "replaygain_album_gain", "replaygain_track_peak", "replaygain_album_peak"):
        found = NUMBER.match(tags.get(key, ""))
        value = float(found.group(1).replace("\u2212", "-").replace(",", ".")) if found else None
        if value is None and key in R128 and re.fullmatch(r"\s*[+-]?\d{1,6}\s*", tags.get(R128[key], "")):
            value = round(int(tags[R128[key]]) / 256 + 5.0, 2)
        out[key] = value if value is None or key.endswith("_gain") or value > 0 else None
    return out


def _register_replay_gain() -> None:
    """Easy names for ReplayGain's ID3 TXXX frames (mutagen's own ``replaygain_*`` names read RVA2 frames) and
    iTunes' freeform atoms, in the case each tagger writes."""
    from mutagen.easyid3 import EasyID3
    from mutagen.easymp4 import EasyMP4Tags

    for what in ("track_gain", "album_gain", "track_peak", "album_peak"):
        EasyID3.RegisterTXXXKey(f"rg_{what}", f"REPLAYGAIN_{what.upper()}")
        EasyID3.RegisterTXXXKey(f"rg_{what}_lower", f"replaygain_{what}")
        EasyMP4Tags.RegisterFreeformKey(f"replaygain_{what}", f"replaygain_{what}")
        EasyMP4Tags.RegisterFreeformKey(f"rg_{what}", f"REPLAYGAIN_{what.upper()}")


def is_compilation(flag: str | None) -> bool:
    """A compilation flag's value (ID3 TCMP, a Vorbis comment, iTunes' cpil) as a yes."""
    return (flag or "").strip().lower() in ("1", "true", "yes")


def read_tags(path: str, content: bytes | None, *, root: str) -> dict:
    """Catalogue fields of one file: its tags first (mutagen), then the folder layout (:func:`layout_guess`).
    Without ``content`` mutagen reads the file itself where it is local (else the layout alone)."""
    import mutagen
    from mutagen.easymp4 import EasyMP4Tags

    if "isrc" not in EasyMP4Tags.Get:  # iTunes keeps the ISRC in a freeform atom easy MP4 tags do not name
        EasyMP4Tags.RegisterFreeformKey("isrc", "ISRC")
        EasyMP4Tags.RegisterKey("compilation", _mp4_compilation)  # and a compilation in its own atom, "cpil"
        _register_replay_gain()
    rel = relative(path, root)
    guess = layout_guess(rel)
    tags: dict[str, str] = {}
    duration = None
    try:
        source = io.BytesIO(content) if content is not None else local_path(path)
        audio = mutagen.File(source, easy=True) if source is not None else None
        if audio is not None:
            duration = float(audio.info.length) if audio.info and audio.info.length else None
            tags = file_tags(audio)
    except Exception:  # noqa: BLE001 - any unreadable tag block falls back to the folder layout
        pass
    genre = tags.get("genre")
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    number = leading_int(tags.get("tracknumber"))
    if number is None and LEADING_NUMBER.match(stem):
        number = leading_int(stem)
    year = leading_int(tags.get("date"))
    return {
        "track_id": stable_track_id(rel),
        "title": tags.get("title") or guess["title"],
        "artist_id": None,
        "artist_name": tags.get("artist") or guess["artist"] or "Unknown artist",
        "album_title": tags.get("album") or guess["album"] or "",
        "genre_top": genre,
        "genre_ids": [],
        "genres_all": [],
        "genre_names": [genre] if genre else [],
        "duration_s": duration,
        "listens": None,
        "subset": None,
        "track_number": number,
        "year": year if year and year >= 1000 else None,
        "recording_mbid": tags.get("musicbrainz_trackid", "").lower() or None,
        "isrc": tags.get("isrc", "").replace("-", "").upper() or None,
        "album_artist": tags.get("albumartist") or (VARIOUS if is_compilation(tags.get("compilation")) else None),
        "disc_number": leading_int(tags.get("discnumber")) or guess["disc"],
        **replay_gain(tags),
        "audio_path": path,
    }
