"""Audio and cover art: ``stream`` and ``download`` serve a song by catalogue id: the original file, with Range.

``stream`` with a ``format`` (``mp3``, ``opus``) other than the file's, or a
``maxBitRate`` below the file's, sends it encoded while it streams
(:mod:`api.transcode`): no Range (``Accept-Ranges: none``), the length said only
when asked (``estimateContentLength``), from ``timeOffset`` seconds when given.
``getOpenSubsonicExtensions`` lists no ``transcodeOffset``: a player told so sends
``timeOffset`` for every seek, of the original files too; players seek the
original with Range requests. ``download`` is always the original.
``getCoverArt`` answers a folder image beside the file, else the picture embedded
in it, else a generated cover (a PNG in colours drawn from the id).
"""

from __future__ import annotations

import hashlib
import itertools
import struct
import zlib
from pathlib import Path

from starlette.responses import FileResponse, Response, StreamingResponse

from api import transcode
from api.browse import song_of
from api.call import Call
from api.context import Context
from api.respond import GENERIC, NOT_FOUND, ApiError
from connectors.audio import AudioRefused, checked_file, disc_folder, in_library


def stream(ctx: Context, call: Call) -> Response:
    """The original file (Starlette's FileResponse answers Range requests: 206, Content-Range, 416), or the song
    encoded as the player asks (:func:`api.transcode.choice`)."""
    song, path, mime = _song_file(ctx, call)
    ctx.library.file_size(song)
    max_kbps = call.integer("maxBitRate", 0, lo=0, hi=100_000)
    asked = transcode.choice(call.one("format"), max_kbps, song.suffix, song.bit_rate)
    if asked is None:
        return FileResponse(path, media_type=mime)
    offset = _seconds(call.one("timeOffset"))
    headers = {"Accept-Ranges": "none"}
    if call.flag("estimateContentLength") and song.duration:
        headers["Content-Length"] = str(asked.length(max(0, song.duration - offset)))
    if call.method == "HEAD":  # the headers a player asks about, without encoding the song for nothing
        return StreamingResponse(iter(()), media_type=asked.mime, headers=headers)
    chunks = transcode.encoded(path, asked, offset_s=offset)
    try:
        first = next(chunks)  # a file FFmpeg cannot read is an error answer, not a broken download
    except Exception as exc:  # noqa: BLE001 - FFmpeg's errors and a file without audio alike
        raise ApiError(GENERIC, f"song {song.id} cannot be encoded as {asked.format}: {exc}") from exc
    body = itertools.chain([first], chunks)
    if "Content-Length" in headers:
        body = transcode.exactly(body, int(headers["Content-Length"]))
    return StreamingResponse(body, media_type=asked.mime, headers=headers)


def _seconds(raw: str | None) -> float:
    """``timeOffset`` as seconds from the start: an integer by the protocol, a fraction as some players send it;
    anything else, negative or not finite is the start (a seek a player got wrong plays from the top)."""
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        return 0.0
    return value if 0.0 < value < 1e7 else 0.0


def download(ctx: Context, call: Call) -> Response:
    """The original file, whatever a format or rate asks."""
    _, path, mime = _song_file(ctx, call)
    return FileResponse(path, media_type=mime)


def _song_file(ctx: Context, call: Call):
    song = song_of(ctx, call.need("id"))
    try:
        path, mime = checked_file(song.location, ctx.settings, what=f"song {song.id}")
    except AudioRefused as exc:
        raise ApiError(NOT_FOUND, str(exc)) from exc
    return song, path, mime


def get_cover_art(ctx: Context, call: Call) -> Response:
    """A song's or album's cover: a folder image beside its file (cover, folder, front), else the picture
    embedded in the file, else a generated one (a picture that does not read as an image is passed over); scaled
    down to ``size`` pixels when given."""
    item = call.need("id")
    size = call.integer("size", 0, lo=0, hi=2000)
    picture = _catalogued_picture(ctx, item)
    if picture is None:
        return Response(generated_cover(item, size or 300), media_type="image/png", headers=CACHE)
    data, mime = picture
    if size:
        data, mime = _scaled(data, size) or (data, mime)
    return Response(data, media_type=mime, headers=CACHE)


CACHE = {"Cache-Control": "public, max-age=86400"}
FOLDER_IMAGES = ("cover", "folder", "front", "album")
IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def _catalogued_picture(ctx: Context, item: str) -> tuple[bytes, str] | None:
    lib = ctx.library.fresh()
    song = None
    if item.startswith("al-") and item in lib.albums:
        song = lib.albums[item].songs[0]
    elif item.isascii() and item.isdigit() and len(item) <= 19:
        song = lib.songs.get(int(item))
    if song is None:
        return None
    try:
        path, _ = checked_file(song.location, ctx.settings)  # the catalogue's file, under the library root
    except AudioRefused:
        return None
    for folder in cover_folders(path, ctx.settings.paths.library_root):
        picture = folder_image(folder)
        if picture is not None:
            return picture
    picture = _embedded(path)
    return picture if picture is not None and _decodes(picture[0]) else None


def cover_folders(path: Path, library_root: str) -> list[Path]:
    """Where a song's folder image may be: its own folder, then the album's when that is a disc's folder
    (``Album/CD2/01.flac``: the cover is in ``Album/``), inside the library only."""
    folders = [path.parent]
    if disc_folder(path.parent.name) is not None and in_library(str(path.parent), library_root):
        folders.append(path.parent.parent)
    return folders


def folder_image(folder: Path) -> tuple[bytes, str] | None:
    """The first cover image in ``folder`` (by FOLDER_IMAGES' names) that reads as an image."""
    try:
        beside = sorted(folder.iterdir())
    except OSError:  # a folder this process may not list has no folder image for it
        return None
    for candidate in beside:
        if candidate.stem.lower() in FOLDER_IMAGES and candidate.suffix.lower() in IMAGE_TYPES:
            try:
                data = candidate.read_bytes()
            except OSError:
                continue
            if _decodes(data):  # a 0-byte or broken download is passed over, as if it were not there
                return data, IMAGE_TYPES[candidate.suffix.lower()]
    return None


def _decodes(data: bytes) -> bool:
    """Whether ``data`` reads as an image (its header and, where the format has them, its checksums)."""
    from io import BytesIO

    from PIL import Image

    try:
        with Image.open(BytesIO(data)) as image:
            image.verify()
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for data that is not a picture
        return False
    return True


def _embedded(path) -> tuple[bytes, str] | None:
    """The first picture in the file's tags (ID3 APIC, FLAC or Vorbis pictures, MP4 covr), if any."""
    try:
        import mutagen

        audio = mutagen.File(path)
    except Exception:  # noqa: BLE001 - an unreadable tag block has no picture
        return None
    if audio is None:
        return None
    for picture in getattr(audio, "pictures", None) or []:
        return picture.data, picture.mime or "image/jpeg"
    for key, frame in (audio.tags or {}).items() if hasattr(audio.tags, "items") else []:
        if str(key).startswith("APIC") and getattr(frame, "data", None):
            return frame.data, frame.mime or "image/jpeg"
        if key == "covr" and frame:  # an MP4 cover says its own format: JPEG (13) or PNG (14)
            return bytes(frame[0]), "image/png" if getattr(frame[0], "imageformat", 13) == 14 else "image/jpeg"
    return None


def _scaled(data: bytes, size: int) -> tuple[bytes, str] | None:
    try:
        from io import BytesIO

        from PIL import Image

        image = Image.open(BytesIO(data))
        image.thumbnail((size, size))
        out = BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=88)
        return out.getvalue(), "image/jpeg"
    except Exception:  # noqa: BLE001 - a picture Pillow cannot read is served as it is
        return None


def generated_cover(key: str, size: int) -> bytes:
    """A square PNG of ``size`` pixels: two colours from the key's hash, in diagonal bands."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    a, b = digest[:3], bytes(min(255, c + 60) for c in digest[3:6])
    band = max(1, size // 8)
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")
        for x in range(size):
            row += a if ((x + y) // band) % 2 == 0 else b
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + chunk(b"IEND", b"")
    )
