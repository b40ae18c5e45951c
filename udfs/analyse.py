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
    embedding: list[float] | None = None  # musicnn's 753 numbers, when asked for (udfs.musicnn)
    embedding_s: float = 0.0


def analyse(data: bytes, *, sample_rate: int, clip_seconds: float, weights=None) -> Analysis:
    """Decode the clip and compute its features (and, given musicnn ``weights``, its embedding from the
    same clip resampled to 16 kHz); never raises for bad input."""
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
    featured = time.perf_counter()
    embedding = None
    if weights is not None:
        try:
            embedding = embed_clip(weights, clip.samples, clip.sample_rate)
        except Exception as exc:  # noqa: BLE001 - as for the features: recorded, not fatal
            return Analysis(None, None, f"embedding failed: {exc.__class__.__name__}: {exc}")
        if not np.all(np.isfinite(embedding)):
            return Analysis(None, None, "embedding contains NaN or Inf", clip.source_rate, clip.channels, clip.seconds)
    return Analysis(
        values=row.values.tolist(),
        tempo=row.tempo,
        error=None,
        source_rate=clip.source_rate,
        channels=clip.channels,
        clip_s=clip.seconds,
        decode_s=decoded - started,
        features_s=featured - decoded,
        embedding=None if embedding is None else embedding.tolist(),
        embedding_s=time.perf_counter() - featured,
    )


def embed_clip(weights, samples: np.ndarray, rate: int) -> np.ndarray:
    """musicnn's embedding of a decoded clip (resampled to its 16 kHz)."""
    import soxr

    from udfs import musicnn

    if rate != musicnn.SR:
        samples = soxr.resample(samples, rate, musicnn.SR, quality="HQ").astype(np.float32, copy=False)
    return musicnn.embed(weights, samples)
