"""A song's audio as a player on a slow network asks for it: MP3 or Opus at a bit rate, encoded while it streams.

``stream?format=mp3|opus&maxBitRate=K`` asks for another format or fewer bits
than the file has (a FLAC of 1,000 kb/s to a phone on mobile data, a ``.wma``
to a player that cannot read it). :func:`choice` decides from the request and
the file what is sent: the original (``format=raw``, a matching format within
the rate, or no ask), or an encoding. :func:`encoded` decodes the file with
FFmpeg (PyAV's wheels carry it), resamples to what the encoder takes and yields
the encoded stream a chunk at a time: a constant bit rate, so its length is
known in advance (``estimateContentLength``), and no Range requests.
``timeOffset`` (seconds) starts the encoding there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MP3_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)  # what MPEG-1 Layer III allows
FORMATS = {"mp3": ("libmp3lame", "mp3", "audio/mpeg"), "opus": ("libopus", "ogg", "audio/ogg")}
ALIASES = {"ogg": "opus", "oga": "opus"}
DEFAULT_KBPS = 192  # a format asked for without a rate
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Encoding:
    """What to encode to: the format (a key of :data:`FORMATS`) and its bit rate in kb/s."""

    format: str
    kbps: int

    @property
    def mime(self) -> str:
        return FORMATS[self.format][2]

    def length(self, seconds: float) -> int:
        """The encoded size at this constant rate: the Content-Length a player may ask to be told."""
        return int(seconds * self.kbps * 1000 / 8)


def choice(asked_format: str | None, max_kbps: int, suffix: str | None, file_kbps: int | None) -> Encoding | None:
    """The encoding a request asks for, or None for the original file.

    The original: ``format=raw``; a format this server does not encode (the player's problem, as before) and
    no rate limit it exceeds; the file's own format within the rate. Otherwise the asked format (MP3 where
    only a rate is asked) at the rate, MP3's a rate it allows, at most :data:`DEFAULT_KBPS` unless asked.
    """
    wanted = ALIASES.get((asked_format or "").lower(), (asked_format or "").lower())
    if wanted == "raw":
        return None
    over = bool(max_kbps) and (file_kbps is None or file_kbps > max_kbps)
    if wanted not in FORMATS:
        if not over:
            return None
        wanted = "mp3"
    elif wanted == (suffix or "").lower() and not over:
        return None
    kbps = min(max_kbps, 320) if max_kbps else DEFAULT_KBPS
    if wanted == "mp3":
        kbps = max([k for k in MP3_KBPS if k <= kbps] or [MP3_KBPS[0]])
    return Encoding(wanted, max(kbps, 6))


class _Sink:
    """A write-only file for the muxer: what it writes is taken a chunk at a time."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data) -> int:
        self.buffer += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


def encoded(path: Path, encoding: Encoding, *, offset_s: float = 0.0) -> Iterator[bytes]:
    """The file's audio from ``offset_s`` encoded as ``encoding``, in chunks of about :data:`CHUNK` bytes. The
    first chunk comes once the file has opened and decoded (a file FFmpeg cannot read raises before any byte)."""
    import av

    codec, container, _ = FORMATS[encoding.format]
    sink = _Sink()
    with av.open(str(path)) as source:
        if not source.streams.audio:
            raise ValueError("the file has no audio stream")
        audio = source.streams.audio[0]
        channels = audio.codec_context.channels or 2
        layout = "mono" if channels == 1 else "stereo"
        rate = 48000 if encoding.format == "opus" else _mp3_rate(audio.codec_context.sample_rate)
        if offset_s > 0 and audio.time_base:
            source.seek(int(offset_s / audio.time_base), stream=audio)  # the key frame at or before it
        options = {"write_xing": "0", "id3v2_version": "0"} if container == "mp3" else {}
        with av.open(sink, "w", format=container, options=options) as out:
            constant = {"vbr": "off"} if codec == "libopus" else {}  # Opus's default rate varies; MP3's does not
            stream = out.add_stream(codec, rate=rate, layout=layout, options=constant)
            stream.codec_context.bit_rate = encoding.kbps * 1000
            to_encoder = av.AudioResampler(format=stream.codec_context.codec.audio_formats[0].name, layout=layout,
                                           rate=rate)  # fmt: skip
            for frame in source.decode(audio):
                if frame.time is not None and frame.time + frame.samples / frame.sample_rate <= offset_s:
                    continue  # before the offset: the seek lands on the key frame before it
                for ready in to_encoder.resample(frame):
                    for packet in stream.encode(ready):
                        out.mux(packet)
                if len(sink.buffer) >= CHUNK:
                    yield sink.take()
            for ready in to_encoder.resample(None):
                for packet in stream.encode(ready):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
    yield sink.take()


def exactly(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    """``chunks`` cut or padded with zero bytes to ``length``: a declared Content-Length must be the body's (an
    MP3 decoder skips the padding; the cut is the encoder's last fraction of a second)."""
    sent = 0
    for chunk in chunks:
        chunk = chunk[: max(0, length - sent)]
        sent += len(chunk)
        if chunk:
            yield chunk
    if sent < length:
        yield bytes(length - sent)


def _mp3_rate(rate: int | None) -> int:
    """MP3 takes 32, 44.1 or 48 kHz (MPEG-1); any other rate is resampled to 44.1 kHz."""
    return rate if rate in (32000, 44100, 48000) else 44100
