"""musicnn's embedding in numpy (udfs.musicnn): the checkpoint read without TensorFlow, the forward pass
against TensorFlow's own answers.

``tests/golden/musicnn_msd_max_pool.npy`` holds TensorFlow 2.21's output (the ``model/Max`` tensor: the
753 values max-pooled over time) of the MSD_musicnn checkpoint's own graph, in inference mode, for the two
patches built in :func:`patches`: seeded noise, and the log-mel of a seeded chirp. It was made once, in a
scratch environment with ``tensorflow-cpu``; nothing here needs TensorFlow.
"""

from __future__ import annotations

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
    layer = weights.timbral[1]
    flipped = musicnn.Conv(
        layer.kernel, layer.bias, layer.size, musicnn.Norm(-np.abs(layer.norm.scale), layer.norm.shift)
    )
    x = np.random.default_rng(3).standard_normal((193, 96)).astype(np.float32)
    for conv in (layer, flipped):
        np.testing.assert_allclose(
            musicnn._conv_pooled(conv, x), musicnn._conv(conv, x).max(axis=1), rtol=1e-5, atol=1e-5
        )


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
