"""musicnn's embedding in numpy (udfs.musicnn): the checkpoint read without TensorFlow, the forward pass
against TensorFlow's own answers.

``tests/golden/musicnn_msd_max_pool.npy`` holds TensorFlow 2.21's output (the ``model/Max`` tensor: the
753 values max-pooled over time) of the MSD_musicnn checkpoint's own graph, in inference mode, for the two
patches built in :func:`patches`: seeded noise, and the log-mel of a seeded chirp. It was made once, in a
scratch environment with ``tensorflow-cpu``; nothing here needs TensorFlow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from conf.settings import REPO_ROOT, load_settings
from udfs import musicnn
from udfs.schema import MUSICNN_DIMS

pytestmark = pytest.mark.unit
GOLDEN = REPO_ROOT / "tests" / "golden" / "musicnn_msd_max_pool.npy"


@pytest.fixture(scope="module")
def weights() -> musicnn.Weights:
    return musicnn.load_weights(Path(load_settings().paths.models_dir) / musicnn.WHEEL)


def patches() -> np.ndarray:
    noise = (np.abs(np.random.default_rng(0).standard_normal((187, 96))) * 2).astype(np.float32)
    t = np.arange(musicnn.SR * 3) / musicnn.SR
    chirp = 0.3 * np.sin(2 * np.pi * (220 + 200 * t) * t) + 0.05 * np.random.default_rng(1).standard_normal(t.size)
    return np.stack([noise, musicnn.log_mel(chirp.astype(np.float32))[: musicnn.PATCH]])


def test_the_checkpoint_is_read_without_tensorflow_layer_by_layer(weights):
    assert [c.size for c in weights.timbral] == [(7, 38), (7, 67)]
    assert [c.size for c in weights.temporal] == [(128, 1), (64, 1), (32, 1)]
    assert [c.size for c in weights.mid] == [(7, 561), (7, 64), (7, 64)]
    assert weights.timbral[0].kernel.shape == (7 * 38, 204) and weights.mid[0].kernel.shape == (7 * 561, 64)
    assert all(np.isfinite(c.kernel).all() and np.isfinite(c.norm.scale).all() for c in weights.timbral)


def test_the_forward_pass_gives_tensorflows_answer(weights):
    golden = np.load(GOLDEN)
    for patch, want in zip(patches(), golden, strict=True):
        got = musicnn.patch_features(weights, patch)
        assert got.shape == (MUSICNN_DIMS,)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


def test_pooling_before_the_bias_relu_and_norm_equals_pooling_after_even_with_negative_scales(weights):
    layer = dataclasses.replace(weights.timbral[1], tiled=None)  # the direct form; the tiled one is below
    flipped = dataclasses.replace(layer, norm=musicnn.Norm(-np.abs(layer.norm.scale), layer.norm.shift))
    x = np.random.default_rng(3).standard_normal((193, 96)).astype(np.float32)
    for conv in (layer, flipped):
        np.testing.assert_allclose(
            musicnn._conv_pooled(conv, x), musicnn._conv(conv, x).max(axis=1), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("outputs,taps", [(2, 3), (4, 7), (6, 7)])
def test_toom_cook_matrices_compute_the_correlation(outputs, taps):
    at, g, bt = musicnn.toom_cook(outputs, taps)
    rng = np.random.default_rng(outputs * taps)
    for _ in range(5):
        d, k = rng.standard_normal(outputs + taps - 1), rng.standard_normal(taps)
        want = [d[i : i + taps] @ k for i in range(outputs)]
        np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), want, rtol=0, atol=1e-11)
    with pytest.raises(ValueError, match="finite points"):
        musicnn.toom_cook(8, 7)


def test_winograds_form_over_time_gives_the_direct_answer_to_float32_rounding(weights):
    """Every frame, filter and band pooling of both timbral layers, a negative-scale filter set
    included, on seeded noise and on a chirp's log-mel: within 2e-5 of the layer's largest value."""
    inputs = [np.random.default_rng(5).standard_normal((193, 96)).astype(np.float32) * 3]
    inputs.append(np.pad(weights.input_norm(patches()[1]), ((3, 3), (0, 0))))
    for layer in weights.timbral:
        norm = musicnn.Norm(-np.abs(layer.norm.scale), layer.norm.shift)
        flipped = dataclasses.replace(
            layer, norm=norm, tiled=musicnn.Tiled.of(layer.kernel, layer.size, musicnn._pool_sign(norm))
        )
        for conv in (layer, flipped):
            assert conv.tiled is not None
            for x in inputs:
                want = musicnn._conv_pooled(dataclasses.replace(conv, tiled=None), x)
                got = musicnn._conv_pooled(conv, x)
                assert got.shape == want.shape == (187, 204)
                np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.abs(want).max())


def test_a_clip_is_the_mean_of_its_patches_and_a_short_one_is_padded(weights):
    rng = np.random.default_rng(4)
    clip = (0.2 * rng.standard_normal(musicnn.SR * 7)).astype(np.float32)  # two whole patches and a rest
    mel = musicnn.log_mel(clip)
    want = np.mean([musicnn.patch_features(weights, mel[i * 187 : (i + 1) * 187]) for i in range(2)], axis=0)
    np.testing.assert_allclose(musicnn.embed(weights, clip), want, rtol=1e-6)
    short = musicnn.embed(weights, clip[: musicnn.SR])
    assert short.shape == (MUSICNN_DIMS,) and np.isfinite(short).all()


def test_a_missing_or_foreign_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(musicnn.WeightsError, match="services/setup.sh"):
        musicnn.load_weights(tmp_path / musicnn.WHEEL)
    with pytest.raises(musicnn.WeightsError, match="not a TensorFlow checkpoint"):
        musicnn.read_checkpoint(b"\0" * 64, b"")
