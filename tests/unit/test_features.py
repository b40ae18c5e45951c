"""The audio core with known answers: synthetic signals whose features are known in advance."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import soundfile as sf

from conf.settings import REPO_ROOT
from tests import audio_files
from udfs.analyse import analyse
from udfs.audio import AudioError, decode_clip
from udfs.features import compute_features, summarize
from udfs.schema import (
    COLUMN_INDEX,
    FEATURE_COLUMNS,
    FEATURE_SIZES,
    N_FEATURES,
    STATISTICS,
    group_of,
    vector_from_bytes,
    vector_to_bytes,
)

pytestmark = pytest.mark.unit
SR = 22050


def tone(freq: float, seconds: float = 5.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode(samples: np.ndarray, sr: int, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=fmt)
    return buf.getvalue()


def test_schema_has_fmas_518_columns_in_fmas_order():
    assert N_FEATURES == 518 == sum(FEATURE_SIZES.values()) * len(STATISTICS)
    # FMA builds its columns as a MultiIndex and sorts it (mdeff/fma features.py).
    fma = pd.MultiIndex.from_tuples(
        [(f, s, f"{i + 1:02d}") for f, n in FEATURE_SIZES.items() for s in STATISTICS for i in range(n)]
    ).sort_values()
    assert list(FEATURE_COLUMNS) == [f"{f}_{s}_{n}" for f, s, n in fma]
    golden = (REPO_ROOT / "tests" / "golden" / "feature_columns.txt").read_text().split()
    assert list(FEATURE_COLUMNS) == golden
    assert FEATURE_COLUMNS[0] == "chroma_cens_kurtosis_01"
    assert FEATURE_COLUMNS[-1] == "zcr_std_01"
    assert group_of("mfcc_mean_03") == "timbre" and group_of("spectral_centroid_max_01") == "brightness"


def test_summary_statistics_match_numpy_and_scipy():
    x = np.random.default_rng(0).gamma(2.0, size=(3, 500))
    got = summarize(x)
    want = np.stack(
        [
            x.mean(axis=1),
            x.std(axis=1),
            scipy.stats.skew(x, axis=1),
            scipy.stats.kurtosis(x, axis=1),
            np.median(x, axis=1),
            x.min(axis=1),
            x.max(axis=1),
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_constant_rows_have_zero_skew_and_kurtosis_not_nan():
    got = summarize(np.full((2, 100), 3.0))
    assert np.isfinite(got).all()
    assert got[2].tolist() == [0.0, 0.0] and got[3].tolist() == [0.0, 0.0]


def test_pure_tone_centroid_and_zero_crossing_rate():
    row = compute_features(y=tone(1000.0), sr=SR).values
    centroid = row[COLUMN_INDEX["spectral_centroid_mean_01"]]
    zcr = row[COLUMN_INDEX["zcr_mean_01"]]
    assert centroid == pytest.approx(1000.0, rel=0.03)
    assert zcr == pytest.approx(2 * 1000.0 / SR, rel=0.03)  # two crossings per period
    # A higher tone is brighter.
    assert compute_features(y=tone(3000.0), sr=SR).values[COLUMN_INDEX["spectral_centroid_mean_01"]] > 2 * centroid


def test_a_tone_lights_up_its_own_chroma_bin():
    """Regression: with librosa 0.11 chroma_cqt misread our 12-bin CQT as 36 bins per octave."""
    row = compute_features(y=tone(440.0), sr=SR).values  # A4
    chroma = [row[COLUMN_INDEX[f"chroma_cqt_mean_{i:02d}"]] for i in range(1, 13)]
    assert int(np.argmax(chroma)) == 9  # C, C#, D, ..., A is the 10th pitch class


def test_silence_gives_finite_features():
    row = compute_features(y=np.zeros(SR * 3, dtype=np.float32), sr=SR)
    assert np.isfinite(row.values).all() and np.isfinite(row.tempo)
    assert row.values[COLUMN_INDEX["rmse_mean_01"]] == 0.0


def test_decode_takes_the_middle_clip_mixes_to_mono_and_resamples():
    left = tone(440.0, seconds=40.0, sr=44100)
    stereo = np.stack([left, 0.5 * left], axis=1)
    clip = decode_clip(encode(stereo, 44100), sample_rate=SR, clip_seconds=30.0)
    assert clip.samples.ndim == 1 and clip.samples.dtype == np.float32
    assert len(clip.samples) == pytest.approx(30 * SR, abs=2)
    assert (clip.source_rate, clip.channels) == (44100, 2)
    assert clip.source_seconds == pytest.approx(40.0)
    assert np.max(np.abs(clip.samples)) == pytest.approx(0.375, rel=0.02)  # the mean of 0.5 and 0.25


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (np.random.default_rng(1).bytes(5000), "cannot decode audio"),
        (b"just some text, not audio\n" * 50, "cannot decode audio"),
        (encode(tone(440.0, seconds=0.3), SR), "too short: 0.30 s"),
    ],
)
def test_bad_audio_gives_a_readable_reason(data: bytes, reason: str):
    with pytest.raises(AudioError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_clip(data, sample_rate=SR, clip_seconds=30.0)
    outcome = analyse(data, sample_rate=SR, clip_seconds=30.0)
    assert outcome.values is None and reason in outcome.error


@pytest.mark.parametrize(("rate", "channels", "fmt"), [(8000, 1, "WAV"), (48000, 6, "FLAC"), (11025, 1, "OGG")])
def test_unusual_rates_and_channel_counts_give_sane_features(rate: int, channels: int, fmt: str):
    mono = tone(523.25, seconds=4.0, sr=rate)
    data = encode(np.repeat(mono[:, None], channels, axis=1), rate, fmt)
    outcome = analyse(data, sample_rate=SR, clip_seconds=30.0)
    assert outcome.error is None
    assert outcome.source_rate == rate and outcome.channels == channels
    assert np.isfinite(outcome.values).all() and len(outcome.values) == N_FEATURES


def ramp(seconds: float, sr: int) -> np.ndarray:
    """Stereo 440 Hz whose loudness grows with time (left twice the right): where a clip was cut from shows in
    its loudness."""
    t = np.arange(int(seconds * sr)) / sr
    left = 0.6 * (t / seconds) * np.sin(2 * np.pi * 440.0 * t)
    return np.stack([left, 0.5 * left], axis=1).astype(np.float32)


def loudness(samples: np.ndarray, sr: int) -> tuple[float, float]:
    """RMS of the first and of the last second."""
    return float(np.sqrt(np.mean(samples[:sr] ** 2))), float(np.sqrt(np.mean(samples[-sr:] ** 2)))


@pytest.mark.parametrize("kind", [*audio_files.FORMATS, "aiff"])
def test_a_library_s_m4a_aac_wma_and_aiff_decode_from_the_middle_like_a_wav(kind: str):
    stereo = ramp(40.0, 44100)
    data = encode(stereo, 44100, "AIFF") if kind == "aiff" else audio_files.encode(stereo, 44100, kind)
    clip = decode_clip(data, sample_rate=SR, clip_seconds=10.0)
    wav = decode_clip(encode(stereo, 44100), sample_rate=SR, clip_seconds=10.0)
    assert (clip.source_rate, clip.channels) == (44100, 2)
    assert len(clip.samples) == len(wav.samples) == 10 * SR
    assert clip.source_seconds == pytest.approx(40.0, abs=2.0)  # ADTS has no length: FFmpeg estimates it
    assert loudness(clip.samples, SR) == pytest.approx(loudness(wav.samples, SR), rel=0.05), "the middle 10 s"
    if kind in ("alac.m4a", "aiff"):  # lossless: the same samples
        np.testing.assert_allclose(clip.samples, wav.samples, atol=1e-4)
    outcome = analyse(data, sample_rate=SR, clip_seconds=30.0)
    assert outcome.error is None and np.isfinite(outcome.values).all()


def test_which_decoder_comes_from_the_bytes_not_the_name():
    from udfs.audio import ffmpeg_container

    mono = tone(440.0, seconds=2.0)
    assert ffmpeg_container(audio_files.encode(mono, SR, "m4a")) == "mp4"
    assert ffmpeg_container(audio_files.encode(mono, SR, "wma")) == "asf"
    assert ffmpeg_container(audio_files.encode(mono, SR, "aac")) == "aac"
    for fmt in ("MP3", "WAV", "FLAC", "OGG", "AIFF"):  # MPEG audio frames share ADTS's sync bits, not its layer
        assert ffmpeg_container(encode(mono, SR, fmt)) is None, fmt


@pytest.mark.parametrize("kind", list(audio_files.FORMATS))
def test_a_cut_or_garbled_m4a_aac_or_wma_gives_a_reason_or_the_audio_before_the_cut(kind: str):
    data = audio_files.encode(tone(440.0, seconds=6.0), SR, kind)
    noise = np.random.default_rng(0).integers(0, 256, len(data) - 64, dtype=np.uint8).tobytes()
    for broken in (data[:200], data[:64] + noise):
        outcome = analyse(broken, sample_rate=SR, clip_seconds=30.0)
        assert outcome.values is None and outcome.error.startswith("cannot decode audio: ")
    half = analyse(data[: len(data) // 2], sample_rate=SR, clip_seconds=30.0)
    if kind.endswith("m4a"):  # the index of an MP4's samples is written last: a cut file has none
        assert half.error.startswith("cannot decode audio: ")
    else:  # a stream of frames: what came before the cut is the track's audio
        assert half.error is None and half.clip_s == pytest.approx(3.0, abs=0.5)


def test_feature_vector_bytes_round_trip_and_check_length():
    values = np.arange(N_FEATURES, dtype=np.float64) / 7
    back = vector_from_bytes(vector_to_bytes(values))
    np.testing.assert_allclose(back, values, rtol=1e-6)
    with pytest.raises(ValueError, match="expected 518 feature values"):
        vector_to_bytes(values[:10])
