"""Audio files in the formats libsndfile does not write (MP4 with AAC or ALAC, ADTS, ASF), made with FFmpeg
(PyAV) as an encoder would make them, and tagged with mutagen as a tagger would, for tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

# suffix -> (FFmpeg's muxer, its codec)
FORMATS = {
    "m4a": ("ipod", "aac"),
    "alac.m4a": ("ipod", "alac"),
    "aac": ("adts", "aac"),
    "wma": ("asf", "wmav2"),
}
ALSO = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus")}  # for tags' tests: soundfile writes the others


def encode(samples: np.ndarray, rate: int, kind: str) -> bytes:
    """(frames,) or (frames, channels) float samples as a file of ``kind`` (a key of :data:`FORMATS` or :data:`ALSO`;
    Opus at 48 kHz)."""
    import av

    muxer, codec = {**FORMATS, **ALSO}[kind]
    block = samples[:, None] if samples.ndim == 1 else samples
    layout = "mono" if block.shape[1] == 1 else "stereo"
    out = io.BytesIO()
    with av.open(out, "w", format=muxer) as media:
        stream = media.add_stream(codec, rate=rate, layout=layout)
        stream.codec_context.bit_rate = 128_000
        wanted = stream.codec_context.codec.audio_formats[0].name
        planes = np.ascontiguousarray(block.T, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
        frame.sample_rate = rate
        for converted in av.AudioResampler(format=wanted, layout=layout, rate=rate).resample(frame):
            for packet in stream.encode(converted):
                media.mux(packet)
        for packet in stream.encode(None):
            media.mux(packet)
    return out.getvalue()


def tag(path: Path, **fields: str) -> None:
    """Tag an .m4a, .wma or .aiff file with title, artist, album, genre, tracknumber, date, isrc (and an .m4a with
    albumartist, discnumber and compilation)."""
    suffix = path.suffix.lower()
    if suffix == ".m4a":
        from mutagen.mp4 import MP4

        names = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "genre": "\xa9gen", "date": "\xa9day",
                 "albumartist": "aART"}  # fmt: skip
        media = MP4(path)
        for key, value in fields.items():
            if key in ("tracknumber", "discnumber"):
                media["trkn" if key == "tracknumber" else "disk"] = [(int(value), 0)]
            elif key == "compilation":
                media["cpil"] = value == "1"
            elif key == "isrc":
                media["----:com.apple.iTunes:ISRC"] = [value.encode()]
            else:
                media[names[key]] = value
    elif suffix == ".wma":
        from mutagen.asf import ASF

        names = {"title": "Title", "artist": "Author", "album": "WM/AlbumTitle", "genre": "WM/Genre",
                 "tracknumber": "WM/TrackNumber", "date": "WM/Year", "isrc": "WM/ISRC"}  # fmt: skip
        media = ASF(path)
        for key, value in fields.items():
            media[names[key]] = value
    else:
        from mutagen import id3
        from mutagen.aiff import AIFF

        frames = {"title": id3.TIT2, "artist": id3.TPE1, "album": id3.TALB, "genre": id3.TCON,
                  "tracknumber": id3.TRCK, "date": id3.TDRC, "isrc": id3.TSRC}  # fmt: skip
        media = AIFF(path)
        if media.tags is None:
            media.add_tags()
        for key, value in fields.items():
            media.tags.add(frames[key](encoding=3, text=value))
    media.save()
