"""A pretrained audio embedding without TensorFlow: musicnn's front and mid end as numpy.

musicnn (Pons and Serra, ISMIR 2019; the ``musicnn`` wheel on PyPI, ISC
licence) is a small convolutional tagger trained on the Million Song Dataset.
Its wheel ships the trained weights as a TensorFlow 1 checkpoint. This module
reads that checkpoint directly (a LevelDB-format table of tensor entries beside
one raw data file: :func:`read_checkpoint`) and runs the layers that matter
for similarity in numpy, in inference mode (batch norms use their moving
statistics):

- the front end: the input batch norm, two "timbral" convolutions (7 frames by
  38 and 67 mel bands, 204 filters each) and three "temporal" ones (128, 64 and
  32 frames by one band, 51 filters each), each max-pooled over frequency:
  561 values per frame;
- the mid end: three 1-D convolutions of 64 filters over 7 frames, the last two
  residual: 192 values per frame;
- the embedding: the maximum over time of those 753 values, per 3 s patch
  (187 frames of a 96-band log-mel spectrogram at 16 kHz), averaged over the
  clip's patches.

The tag layers (the dense back end) are not needed and not computed. The two
timbral convolutions, 80% of the multiply-adds, run in Winograd's minimal
filtering form over time (:func:`toom_cook`, :func:`_tiled_maxima`): 2.5x fewer
multiply-adds, within about 1e-5 of the direct form's values (a 30 s clip took
0.53 s of a core in the direct form as first written, 0.39 s with its products
kept in cache, 0.24 s now). The forward pass was checked against TensorFlow 2.21 running the checkpoint's own
graph (``tests/golden/musicnn_*``): the same embedding to float32 rounding.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 16_000
N_FFT, HOP, N_MELS = 512, 256, 96
PATCH = 187  # frames: 3 s
EPS = 1e-3  # tf.layers.batch_normalization's epsilon
MODEL = "MSD_musicnn"
WHEEL = "musicnn-0.1.0-py3-none-any.whl"


class WeightsError(RuntimeError):
    """The musicnn weights are missing or unreadable; the message says what to do."""


# ---------------------------------------------------------------- the checkpoint, read without TensorFlow


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _block_entries(block: bytes):
    """(key, value) of one uncompressed LevelDB table block (keys prefix-compressed)."""
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 * (restarts + 1)
    at, key = 0, b""
    while at < end:
        shared, at = _varint(block, at)
        fresh, at = _varint(block, at)
        size, at = _varint(block, at)
        key = key[:shared] + block[at : at + fresh]
        at += fresh
        yield key, block[at : at + size]
        at += size


def _block(table: bytes, handle: bytes) -> bytes:
    offset, at = _varint(handle, 0)
    size, _ = _varint(handle, at)
    if table[offset + size] != 0:
        raise WeightsError("compressed checkpoint index blocks are not supported")
    return table[offset : offset + size]


def _fields(message: bytes):
    """(field number, wire type, value) of a protobuf message; value is an int or bytes."""
    at = 0
    while at < len(message):
        tag, at = _varint(message, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, at = _varint(message, at)
        elif wire == 2:
            size, at = _varint(message, at)
            value, at = message[at : at + size], at + size
        elif wire == 5:
            value, at = message[at : at + 4], at + 4
        elif wire == 1:
            value, at = message[at : at + 8], at + 8
        else:
            raise WeightsError(f"unexpected protobuf wire type {wire} in the checkpoint index")
        yield number, wire, value


def read_checkpoint(index: bytes, data: bytes) -> dict[str, np.ndarray]:
    """Every float32 tensor of a TensorFlow tensor bundle (``.index`` table + one data shard)."""
    if len(index) < 48 or index[-8:] != struct.pack("<Q", 0xDB4775248B80FB57):
        raise WeightsError("not a TensorFlow checkpoint index (bad table footer)")
    footer = index[-48:]
    _, at = _varint(footer, 0)  # the metaindex handle
    _, at = _varint(footer, at)
    index_handle = footer[at:]
    tensors = {}
    for _, handle in _block_entries(_block(index, index_handle)):
        for key, value in _block_entries(_block(index, handle)):
            if not key:
                continue  # the bundle header
            dtype, shape, offset, size = 0, [], 0, 0
            for number, _, v in _fields(value):
                if number == 1:
                    dtype = v
                elif number == 2:
                    shape = [next(int(s) for n, _, s in _fields(dim) if n == 1) for n, _, dim in _fields(v) if n == 2]
                elif number == 4:
                    offset = v
                elif number == 5:
                    size = v
            if dtype != 1:  # DT_FLOAT; optimizer steps and the like are not weights
                continue
            tensors[key.decode()] = np.frombuffer(data[offset : offset + size], "<f4").reshape(shape)
    return tensors


# ---------------------------------------------------------------- the weights


@dataclass(frozen=True)
class Norm:
    scale: np.ndarray  # gamma / sqrt(variance + eps)
    shift: np.ndarray  # beta - mean * scale

    @classmethod
    def of(cls, t: dict[str, np.ndarray], name: str) -> Norm:
        scale = t[f"{name}/gamma"] / np.sqrt(t[f"{name}/moving_variance"] + EPS)
        return cls(scale.astype(np.float32), (t[f"{name}/beta"] - t[f"{name}/moving_mean"] * scale).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x * self.scale + self.shift


@dataclass(frozen=True)
class Tiled:
    """A pooled convolution's kernel in Winograd's form over time: ``TILE`` output frames per tile.

    ``kernel`` is ``G`` applied to the kernel along its frames, with each negative-scale filter
    negated (see :func:`_conv_pooled`): (tile inputs, bands, filters). ``inputs`` (``B^T``) and
    ``outputs`` (``A^T``) take a tile of input frames in and the tile's output frames out.
    """

    kernel: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray

    @classmethod
    def of(cls, kernel: np.ndarray, size: tuple[int, int], sign: np.ndarray) -> Tiled:
        frames, bands = size
        at, g, bt = toom_cook(TILE, frames)
        taps = (kernel.astype(np.float64) * sign).reshape(frames, bands, -1)
        transformed = np.einsum("xd,dbo->xbo", g, taps)
        return cls(*(a.astype(np.float32) for a in (transformed, bt, at)))


@dataclass(frozen=True)
class Conv:
    kernel: np.ndarray  # (rows, out): the (time, band) window flattened
    bias: np.ndarray
    size: tuple[int, int]  # (frames, bands)
    norm: Norm
    tiled: Tiled | None = None  # the same convolution in Winograd's form over time (the timbral layers)


@dataclass(frozen=True)
class Weights:
    input_norm: Norm
    timbral: tuple[Conv, Conv]
    temporal: tuple[Conv, Conv, Conv]
    mid: tuple[Conv, Conv, Conv]


def weights_from(tensors: dict[str, np.ndarray]) -> Weights:
    """musicnn's layers in creation order: conv2d .. conv2d_7, batch_normalization .. _8."""

    def conv(i: int, *, tiled: bool = False) -> Conv:
        k = tensors["conv2d" + (f"_{i}" if i else "") + "/kernel"]  # (frames, bands, 1, filters)
        kernel, size = np.ascontiguousarray(k.reshape(-1, k.shape[-1]), dtype=np.float32), (k.shape[0], k.shape[1])
        norm = Norm.of(tensors, f"batch_normalization_{i + 1}")
        bias = tensors["conv2d" + (f"_{i}" if i else "") + "/bias"].astype(np.float32)
        return Conv(kernel, bias, size, norm, Tiled.of(kernel, size, _pool_sign(norm)) if tiled else None)

    return Weights(
        Norm.of(tensors, "batch_normalization"),
        (conv(0, tiled=True), conv(1, tiled=True)),
        (conv(2), conv(3), conv(4)),
        (conv(5), conv(6), conv(7)),
    )


def load_weights(wheel: Path, model: str = MODEL) -> Weights:
    """The weights of ``model`` from the musicnn wheel (a zip; nothing is installed or imported)."""
    if not wheel.is_file():
        raise WeightsError(f"no musicnn weights at {wheel}: run services/setup.sh (it downloads {WHEEL} from PyPI)")
    with zipfile.ZipFile(wheel) as z:
        index = z.read(f"musicnn/{model}/.index")
        data = z.read(f"musicnn/{model}/.data-00000-of-00001")
    return weights_from(read_checkpoint(index, data))


# ---------------------------------------------------------------- the forward pass


ROWS_PER_PRODUCT = 32  # output frames per matrix product of a pooled convolution: its rows stay in cache
TILE = 6  # output frames per Winograd tile (the timbral layers: 7 frames, so 12 input frames a tile)
TILES_PER_PRODUCT = 2
POINTS = (0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 2 / 3, -2 / 3, 1.5, -1.5)  # Winograd's, see toom_cook


def _conv(layer: Conv, x: np.ndarray) -> np.ndarray:
    """A valid single-channel convolution, then ReLU, then the layer's batch norm: (T', F', filters).

    Summed over the window's frames, one matrix product per frame: no copy of every window.
    """
    frames, bands = layer.size
    kernel = layer.kernel.reshape(frames, bands, -1)
    steps = x.shape[0] - frames + 1
    out = sum(np.lib.stride_tricks.sliding_window_view(x[d : d + steps], bands, axis=1) @ kernel[d]
              for d in range(frames))  # fmt: skip
    out += layer.bias
    np.maximum(out, 0, out=out)
    return layer.norm(out)


def _pool_sign(norm: Norm) -> np.ndarray:
    return np.where(norm.scale >= 0, 1, -1).astype(np.float32)


def _conv_pooled(layer: Conv, x: np.ndarray) -> np.ndarray:
    """``_conv(layer, x).max(axis=1)``, with the bias, ReLU and batch norm applied after the pooling.

    They are monotonic per filter, so the maximum over bands commutes with them, except that a
    batch norm with a negative scale turns the maximum into the minimum: that filter's kernel is
    negated (exactly), its maximum taken, and the sign put back. A layer with a ``tiled`` form goes
    through :func:`_tiled_maxima`; otherwise the windows are copied into one matrix
    ``ROWS_PER_PRODUCT`` frames at a time and pooled straight after each product, so neither the
    windows nor the products of a whole patch pass through memory.
    """
    sign = _pool_sign(layer.norm)
    top = _tiled_maxima(layer, x) if layer.tiled is not None else _direct_maxima(layer, x, sign)
    pooled = top * sign + layer.bias
    np.maximum(pooled, 0, out=pooled)
    return layer.norm(pooled)


def _direct_maxima(layer: Conv, x: np.ndarray, sign: np.ndarray) -> np.ndarray:
    frames, bands = layer.size
    kernel = layer.kernel * sign
    view = np.lib.stride_tricks.sliding_window_view(x, (frames, bands))  # (T', F', frames, bands): no copy
    steps, places = view.shape[:2]
    rows = np.empty((ROWS_PER_PRODUCT * places, frames * bands), np.float32)
    products = np.empty((ROWS_PER_PRODUCT * places, kernel.shape[1]), np.float32)
    top = np.empty((steps, kernel.shape[1]), np.float32)
    for start in range(0, steps, ROWS_PER_PRODUCT):
        n = min(ROWS_PER_PRODUCT, steps - start)
        rows[: n * places].reshape(n, places, frames, bands)[...] = view[start : start + n]
        np.matmul(rows[: n * places], kernel, out=products[: n * places])
        products[: n * places].reshape(n, places, -1).max(axis=1, out=top[start : start + n])
    return top


def _tiled_maxima(layer: Conv, x: np.ndarray) -> np.ndarray:
    """Each filter's maximum over bands per output frame, by Winograd's minimal filtering over time.

    Output frames go ``TILE`` at a time: a tile's ``TILE + frames - 1`` input frames are mixed by
    ``B^T`` (over time only, so the band windows are taken after), each of the mixes multiplied by
    its transformed kernel (one matrix product each, over bands), and ``A^T`` mixes the products back
    into the tile's frames. That is 12 products for 6 frames where the direct form does 6 x 7: 2.5x
    fewer multiply-adds, for a float32 rounding difference of about 1e-5 of the layer's values.
    """
    tiled = layer.tiled
    assert tiled is not None
    frames, bands = layer.size
    width, filters = tiled.inputs.shape[0], tiled.kernel.shape[2]
    steps = x.shape[0] - frames + 1
    count = -(-steps // TILE)
    x = np.pad(x, ((0, count * TILE + frames - 1 - x.shape[0]), (0, 0)))
    tiles = np.lib.stride_tricks.sliding_window_view(x, width, axis=0)[::TILE].transpose(0, 2, 1)
    mixed = np.matmul(tiled.inputs, tiles)  # (tiles, width, input bands)
    windows = np.lib.stride_tricks.sliding_window_view(mixed, bands, axis=2).transpose(1, 0, 2, 3)
    places = windows.shape[2]  # (width, tiles, places, bands)
    rows = np.empty((width, TILES_PER_PRODUCT * places, bands), np.float32)
    products = np.empty((width, TILES_PER_PRODUCT * places, filters), np.float32)
    top = np.empty((count, TILE, filters), np.float32)
    for start in range(0, count, TILES_PER_PRODUCT):
        n = min(TILES_PER_PRODUCT, count - start)
        rows[:, : n * places].reshape(width, n, places, bands)[...] = windows[:, start : start + n]
        np.matmul(rows[:, : n * places], tiled.kernel, out=products[:, : n * places])
        frames_out = (tiled.outputs @ products[:, : n * places].reshape(width, -1)).reshape(TILE, n, places, filters)
        top[start : start + n] = frames_out.max(axis=2).transpose(1, 0, 2)
    return top.reshape(count * TILE, filters)[:steps]


def toom_cook(outputs: int, taps: int, points: tuple[float, ...] = POINTS):
    """Winograd's minimal filtering F(outputs, taps) as the matrices ``(A^T, G, B^T)`` (float64).

    ``A^T @ ((G @ g) * (B^T @ d))`` is the correlation ``y[i] = sum_k d[i + k] * g[k]`` for
    ``i < outputs``, of ``d`` (``outputs + taps - 1`` values) with ``g`` (``taps``): the transpose
    of Toom-Cook's linear convolution, evaluated at ``points`` and at infinity. Each row of ``B^T``
    is scaled to a largest entry of 1 and its row of ``G`` by the inverse, which keeps float32
    rounding small; the points (small fractions, in pairs of opposite sign) were chosen by it.
    """
    size = outputs + taps - 1
    if len(points) < size - 1:
        raise ValueError(f"F({outputs}, {taps}) needs {size - 1} finite points, {len(points)} given")

    def evaluation(n: int) -> np.ndarray:  # rows: each point's powers, then infinity's
        rows = np.array([[p**k for k in range(n)] for p in points[: size - 1]], dtype=np.float64)
        return np.vstack([rows, np.eye(n)[-1]])

    bt = np.linalg.inv(evaluation(size)).T
    g = evaluation(taps)
    scale = np.abs(bt).max(axis=1)
    return evaluation(outputs).T, g * scale[:, None], bt / scale[:, None]


def _same_in_time(x: np.ndarray, frames: int) -> np.ndarray:
    before = (frames - 1) // 2
    return np.pad(x, ((before, frames - 1 - before), (0, 0)))


def patch_features(weights: Weights, mel: np.ndarray) -> np.ndarray:
    """The 753 per-frame values of one (187, 96) log-mel patch, max-pooled over time."""
    x = weights.input_norm(mel.astype(np.float32))
    padded = np.pad(x, ((3, 3), (0, 0)))
    parts = [_conv_pooled(c, padded) for c in weights.timbral]  # (187, 204) each
    parts += [_conv_pooled(c, _same_in_time(x, c.size[0])) for c in weights.temporal]  # (187, 51) each
    front = np.concatenate(parts, axis=1)  # (187, 561)
    m1 = _conv(weights.mid[0], np.pad(front, ((3, 3), (0, 0))))[:, 0, :]  # (187, 64)
    m2 = _conv(weights.mid[1], np.pad(m1, ((3, 3), (0, 0))))[:, 0, :] + m1
    m3 = _conv(weights.mid[2], np.pad(m2, ((3, 3), (0, 0))))[:, 0, :] + m2
    return np.concatenate([front, m1, m2, m3], axis=1).max(axis=0)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """musicnn's input: (frames, 96) log10(1 + 10000 * mel power) of 16 kHz audio."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=samples.astype(np.float32), sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, pad_mode="reflect"
    ).T
    return np.log10(1 + 10000 * mel.astype(np.float32))


def embed(weights: Weights, samples: np.ndarray) -> np.ndarray:
    """The clip's embedding (753 float32): the mean over its 3 s patches (a short clip is zero-padded)."""
    mel = log_mel(samples)
    n = len(mel) // PATCH
    if n == 0:
        mel, n = np.pad(mel, ((0, PATCH - len(mel)), (0, 0))), 1
    patches = [patch_features(weights, mel[i * PATCH : (i + 1) * PATCH]) for i in range(n)]
    return np.mean(patches, axis=0).astype(np.float32)


def embed_bytes(weights: Weights, data: bytes, *, clip_seconds: float) -> np.ndarray:
    """Decode the middle ``clip_seconds`` of ``data`` at 16 kHz and embed it (raises AudioError)."""
    from udfs.audio import decode_clip

    return embed(weights, decode_clip(data, sample_rate=SR, clip_seconds=clip_seconds).samples)
