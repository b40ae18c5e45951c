"""The FMA-compatible feature set from one mono clip: one STFT and one CQT per track.

Follows mdeff/fma's ``compute_features`` (the recipe behind FMA's
``features.csv``) with the expensive transforms shared: the magnitude STFT
feeds chroma_stft, rmse, the spectral features, the mel spectrogram (mfcc) and
the tuning estimate; the CQT feeds chroma_cqt, chroma_cens and (through
chroma_cens) tonnetz. Tempo comes from the onset envelope of the same mel
spectrogram.

Statistics that are undefined for a constant signal (skew and kurtosis of a
silent clip) are reported as 0, so every row is
finite: MongoDB servers and the index both reject NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import librosa
import numpy as np

from udfs.schema import COLUMN_INDEX, FEATURE_SIZES, N_FEATURES, STATISTICS, column_name

N_FFT = 2048
HOP = 512
CQT_BINS_PER_OCTAVE = 12
CQT_OCTAVES = 7
TUNING_FRAME_STEP = 4


@dataclass(frozen=True)
class FeatureRow:
    """The 518 FMA statistics in schema order, plus tempo in beats per minute."""

    values: np.ndarray  # shape (518,), float64, finite
    tempo: float


def _positions() -> dict[str, np.ndarray]:
    """For each feature, where its (statistic, number) block lands in the schema-ordered row."""
    out = {}
    for feature, size in FEATURE_SIZES.items():
        idx = np.empty((len(STATISTICS), size), dtype=np.int64)
        for s, statistic in enumerate(STATISTICS):
            for i in range(size):
                idx[s, i] = COLUMN_INDEX[column_name(feature, statistic, i + 1)]
        out[feature] = idx
    return out


_POSITIONS = _positions()


def summarize(values: np.ndarray) -> np.ndarray:
    """The seven FMA statistics of each row of ``values`` (shape (n, frames)) -> (7, n).

    Order: mean, std, skew, kurtosis, median, min, max; std, skew and kurtosis
    are the biased (population) moments, as numpy's and scipy's defaults, and
    kurtosis is Fisher's (0 for a normal distribution).
    """
    x = np.asarray(values, dtype=np.float64)
    mean = x.mean(axis=1)
    d = x - mean[:, None]
    m2 = np.mean(d * d, axis=1)
    m3 = np.mean(d * d * d, axis=1)
    m4 = np.mean((d * d) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A (numerically) constant row has no shape: its skew and kurtosis are defined as 0 here.
        flat = m2 <= (np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1e-30)) ** 2
        skew = np.where(flat, 0.0, m3 / m2**1.5)
        kurt = np.where(flat, 0.0, m4 / m2**2 - 3.0)
    stats = np.stack([mean, np.sqrt(m2), skew, kurt, np.median(x, axis=1), x.min(axis=1), x.max(axis=1)])
    return np.nan_to_num(stats, nan=0.0, posinf=0.0, neginf=0.0)


def compute_features(*, y: np.ndarray, sr: int) -> FeatureRow:
    """Compute the full feature row of one mono clip ``y`` (float32, shape (n,)) at rate ``sr``."""
    if y.ndim != 1:
        raise ValueError(f"expected a mono clip of shape (n,), got {y.shape}")
    if len(y) < N_FFT:
        raise ValueError(f"clip too short for the analysis window: {len(y)} samples < {N_FFT}")
    with warnings.catch_warnings():
        # Silence and pure tones trigger librosa's "empty frequency set" and tuning warnings.
        warnings.simplefilter("ignore")
        return _compute(y, sr)


def _compute(y: np.ndarray, sr: int) -> FeatureRow:
    blocks: dict[str, np.ndarray] = {}
    blocks["zcr"] = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)

    stft = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    power = stft**2
    # Tuning is a property of the whole clip: every 4th frame estimates it as well, 4x cheaper.
    tuning = float(librosa.estimate_tuning(S=stft[:, ::TUNING_FRAME_STEP], sr=sr, n_fft=N_FFT))

    cqt = np.abs(
        librosa.cqt(
            y,
            sr=sr,
            hop_length=HOP,
            bins_per_octave=CQT_BINS_PER_OCTAVE,
            n_bins=CQT_OCTAVES * CQT_BINS_PER_OCTAVE,
            tuning=tuning,
        )
    )
    # bins_per_octave must be the CQT's: librosa 0.11 defaults to 36, which misplaces every
    # pitch class of a 12-bin CQT (a regression test pins A4 to the A bin).
    blocks["chroma_cqt"] = librosa.feature.chroma_cqt(
        C=cqt, n_chroma=12, n_octaves=CQT_OCTAVES, bins_per_octave=CQT_BINS_PER_OCTAVE
    )
    cens = librosa.feature.chroma_cens(C=cqt, n_chroma=12, n_octaves=CQT_OCTAVES, bins_per_octave=CQT_BINS_PER_OCTAVE)
    blocks["chroma_cens"] = cens
    blocks["tonnetz"] = librosa.feature.tonnetz(chroma=cens, sr=sr)
    del cqt

    blocks["chroma_stft"] = librosa.feature.chroma_stft(S=power, sr=sr, n_chroma=12, tuning=tuning)
    blocks["rmse"] = librosa.feature.rms(S=stft, frame_length=N_FFT)
    centroid = librosa.feature.spectral_centroid(S=stft, sr=sr)
    blocks["spectral_centroid"] = centroid
    blocks["spectral_bandwidth"] = librosa.feature.spectral_bandwidth(S=stft, sr=sr, centroid=centroid)
    blocks["spectral_contrast"] = librosa.feature.spectral_contrast(S=stft, sr=sr, n_bands=6)
    blocks["spectral_rolloff"] = librosa.feature.spectral_rolloff(S=stft, sr=sr)

    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr))
    blocks["mfcc"] = librosa.feature.mfcc(S=mel_db, n_mfcc=20)
    onset = librosa.onset.onset_strength(S=mel_db, sr=sr)
    tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP))[0])

    row = np.zeros(N_FEATURES, dtype=np.float64)
    for feature, values in blocks.items():
        row[_POSITIONS[feature]] = summarize(values)
    return FeatureRow(values=row, tempo=tempo if np.isfinite(tempo) else 0.0)
