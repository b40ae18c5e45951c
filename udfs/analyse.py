"""One track, bytes in, feature row or reason out: the pure core the pandas UDF wraps."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from udfs.audio import AudioError, decode_clip
from udfs.features import compute_features


@dataclass(frozen=True)
class Analysis:
    """The outcome for one track: ``values`` and ``tempo``, or an ``error`` reason."""

    values: list[float] | None
    tempo: float | None
    error: str | None
    source_rate: int | None = None
    channels: int | None = None
    clip_s: float | None = None
    decode_s: float = 0.0
    features_s: float = 0.0


def analyse(data: bytes, *, sample_rate: int, clip_seconds: float) -> Analysis:
    """Decode the clip and compute its features; never raises for bad input."""
    started = time.perf_counter()
    try:
        clip = decode_clip(data, sample_rate=sample_rate, clip_seconds=clip_seconds)
    except AudioError as exc:
        return Analysis(None, None, str(exc), decode_s=time.perf_counter() - started)
    decoded = time.perf_counter()
    try:
        row = compute_features(y=clip.samples, sr=clip.sample_rate)
    except Exception as exc:  # noqa: BLE001 - a track that breaks the analysis is recorded, not fatal
        return Analysis(
            None,
            None,
            f"feature computation failed: {exc.__class__.__name__}: {exc}",
            clip.source_rate,
            clip.channels,
            clip.seconds,
            decoded - started,
            time.perf_counter() - decoded,
        )
    if not np.all(np.isfinite(row.values)):
        return Analysis(None, None, "features contain NaN or Inf", clip.source_rate, clip.channels, clip.seconds)
    return Analysis(
        values=row.values.tolist(),
        tempo=row.tempo,
        error=None,
        source_rate=clip.source_rate,
        channels=clip.channels,
        clip_s=clip.seconds,
        decode_s=decoded - started,
        features_s=time.perf_counter() - decoded,
    )
