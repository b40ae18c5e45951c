"""Audio and cover art: ``stream`` and ``download`` serve the original file by catalogue id, with Range.

No transcoding: ``format``, ``maxBitRate`` and ``timeOffset`` are accepted and the
original is served (``getOpenSubsonicExtensions`` lists no ``transcodeOffset``;
players then seek with Range requests, which every one we tried does).
``getCoverArt`` answers a generated cover (a PNG in a colour drawn from the id),
since covers are not catalogued yet.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib

from starlette.responses import FileResponse, Response

from api.call import Call, song_id
from api.context import Context
from api.respond import NOT_FOUND, ApiError
from connectors.audio import AudioRefused, audio_path

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def stream(ctx: Context, call: Call) -> Response:
    tid = song_id(call.need("id"))
    try:
        path, mime = audio_path(ctx.db, ctx.settings, tid)
    except AudioRefused as exc:
        raise ApiError(NOT_FOUND, str(exc)) from exc
    size = path.stat().st_size
    wanted = call.headers.get("range")
    if not wanted:
        return FileResponse(path, media_type=mime, headers={"Accept-Ranges": "bytes"})
    m = RANGE.match(wanted.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:  # the last N bytes
        start, end = max(0, size - int(m.group(2))), size - 1
    if start >= size or end < start:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    with path.open("rb") as f:
        f.seek(start)
        body = f.read(end - start + 1)
    return Response(body, status_code=206, media_type=mime,
                    headers={"Content-Range": f"bytes {start}-{end}/{size}", "Accept-Ranges": "bytes"})  # fmt: skip


def download(ctx: Context, call: Call) -> Response:
    return stream(ctx, call)


def get_cover_art(ctx: Context, call: Call) -> Response:
    item = call.need("id")
    size = call.integer("size", 300, lo=16, hi=1200)
    return Response(generated_cover(item, size), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


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
