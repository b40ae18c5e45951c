"""The batched search's inner loops, compiled (numba): score shards for many queries, keep each query's k best.

:func:`index.batched.nearest_flat` decides which shards each query visits; this module scores them. Each
query keeps its best ``k`` candidates in a max-heap of sort keys (its row of ``heap``): a key is the
float32 distance's bits above the track id's rank, so keys order like (distance, track id), and ties go
to the smaller id.

A query's squared distance to a track is ``|q|^2 - 2 q.p + |p|^2`` in double precision, the dot product
summed by one compiled loop (in a fixed order), then rounded to float32 after the square root: the same value
whichever other queries share the call (a listener's answer must not depend on how a micro-batch was
composed). One compiled pass per (query, shard) pair replaces a matrix product, a partition and a dozen
array operations per shard and group: the stream's groups are small (a few listeners per shard).

Compiled once and kept in numba's cache (``NUMBA_CACHE_DIR`` where set, else beside this file), so a new
process loads them in a fraction of a second instead of compiling for about a second and a half.
Processes that compile and write the same cache entries at once can leave them inconsistent
(``udfs.numba_cache``), so :func:`ready` loads or compiles them under a lock on the host, once per process.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading

import numba
import numpy as np

NONE = np.iinfo(np.int64).max  # the sort key of an empty slot
LOCK_FILE = os.path.join(tempfile.gettempdir(), f"earshot-index-kernels-{os.getuid()}.lock")
_ready = threading.Event()


def ready() -> None:
    """Load (or compile and cache) every kernel in this process, one process at a time on this host.

    Without a lock file (an unwritable temporary folder) they are compiled unserialised, as numba would.
    """
    if _ready.is_set():
        return
    try:
        lock = open(LOCK_FILE, "a")  # noqa: SIM115 - held across the calls below
    except OSError:
        _call_each()
    else:
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                _call_each()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    _ready.set()


def _call_each() -> None:
    """Each kernel once, on tiny inputs of the types the callers pass: compiled or loaded now, not mid-batch."""
    z, i64 = np.zeros, np.int64
    score_pairs(
        z((2, 3)), z(2), z(2, i64), np.array([0, 2], i64), z((1, 3)), z(1), z(1, i64), z(1, i64), z(2, i64),
        z(0, i64), np.full((1, 1), NONE, i64), z((1, 1), i64), z(1, i64),
    )  # fmt: skip
    nearest_among(z((1, 3), np.float32), z((2, 3), np.float32), np.array([[0, -1]], i64))
    f32 = np.float32
    reason_codes(z((1, 3), f32), z((1, 3), f32), z(1, i64), np.array([0, 1, 2], i64), np.array([0, 1], i64),
                 np.ones(2), np.array([2], i64), np.ones(2), 0.6)  # fmt: skip


@numba.njit(nogil=True, cache=True)
def _push(keys: np.ndarray, flats: np.ndarray, size: int, key: int, flat: int) -> int:
    """Insert (key, flat) into the max-heap ``keys[:size]`` of capacity ``len(keys)``; returns the new size."""
    k = len(keys)
    if size < k:
        at = size
        while at > 0:  # sift up
            parent = (at - 1) >> 1
            if keys[parent] >= key:
                break
            keys[at], flats[at] = keys[parent], flats[parent]
            at = parent
        keys[at], flats[at] = key, flat
        return size + 1
    if key >= keys[0]:
        return size
    at = 0
    while True:  # sift down from the root
        child = 2 * at + 1
        if child >= k:
            break
        if child + 1 < k and keys[child + 1] > keys[child]:
            child += 1
        if keys[child] <= key:
            break
        keys[at], flats[at] = keys[child], flats[child]
        at = child
    keys[at], flats[at] = key, flat
    return size


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """One dot product; the compiled loop's summation order is fixed, whatever else is being scored."""
    total = 0.0
    for j in range(len(a)):
        total += a[j] * b[j]
    return total


@numba.njit(nogil=True, cache=True)
def score_pairs(
    points: np.ndarray,
    norms: np.ndarray,
    rank: np.ndarray,
    offsets: np.ndarray,
    queries: np.ndarray,
    query_norms: np.ndarray,
    pair_query: np.ndarray,
    pair_shard: np.ndarray,
    ex_start: np.ndarray,
    ex_flat: np.ndarray,
    heap_keys: np.ndarray,
    heap_flats: np.ndarray,
    heap_size: np.ndarray,
) -> None:
    """Score query ``pair_query[i]`` against every track of shard ``pair_shard[i]``, into its heap row.

    ``points`` (tracks, dims): every track's index-space point, float64, in flat positions' order;
    ``norms`` their squared lengths; ``rank`` each flat position's place among the sorted ids;
    ``offsets`` (shards + 1) each shard's first flat position. ``ex_flat[ex_start[q]:ex_start[q + 1]]``:
    the flat positions query q leaves out. Pairs are best grouped by shard (its points stay in cache).
    """
    widest = 0
    for s in range(len(offsets) - 1):
        widest = max(widest, offsets[s + 1] - offsets[s])
    left_out = np.zeros(widest, np.bool_)
    box = np.empty(1, np.float32)
    bits = box.view(np.int32)  # a float32's bits: non-negative floats order like their bits
    for i in range(len(pair_query)):
        q, s = pair_query[i], pair_shard[i]
        first, n = offsets[s], offsets[s + 1] - offsets[s]
        for e in range(ex_start[q], ex_start[q + 1]):
            if first <= ex_flat[e] < first + n:
                left_out[ex_flat[e] - first] = True
        keys, flats = heap_keys[q], heap_flats[q]
        size = heap_size[q]
        point, qq = queries[q], query_norms[q]
        for t in range(n):
            if left_out[t]:
                left_out[t] = False
                continue
            d = qq - 2.0 * _dot(point, points[first + t]) + norms[first + t]
            box[0] = np.sqrt(max(d, 0.0))
            key = (np.int64(bits[0]) << 32) | rank[first + t]
            if size == len(keys) and key >= keys[0]:
                continue
            size = _push(keys, flats, size, key, first + t)
        heap_size[q] = size


@numba.njit(nogil=True, cache=True)
def nearest_among(points: np.ndarray, candidates: np.ndarray, table: np.ndarray) -> np.ndarray:
    """For each row a of ``points`` (float32), the column of ``table[a]`` (rows of ``candidates``; -1 pads,
    never first) whose candidate is nearest: squared euclidean distance in float32, the first of equals."""
    out = np.empty(len(points), np.int64)
    for a in range(len(points)):
        best, arg = np.inf, 0
        for c in range(table.shape[1]):
            j = table[a, c]
            if j < 0:
                continue
            d = np.float32(0.0)
            for k in range(points.shape[1]):
                x = points[a, k] - candidates[j, k]
                d += x * x
            if d < best:
                best, arg = d, c
        out[a] = arg
    return out


@numba.njit(nogil=True, cache=True)
def reason_codes(
    others: np.ndarray,
    references: np.ndarray,
    ref_of: np.ndarray,
    starts: np.ndarray,
    columns: np.ndarray,
    weights: np.ndarray,
    rest: np.ndarray,
    scale: np.ndarray,
    close: float,
) -> np.ndarray:
    """For each row i of ``others`` (float32), against ``references[ref_of[i]]``: the reason code of its two
    closest feature groups (:meth:`index.reasons.Reasons._reason_codes` says the codes).

    Group g holds ``columns[starts[g]:starts[g + 1]]``; its distance is the square root of the sum of each
    column's float32 squared difference, in double precision, times the column's weight (1 / the group's
    size), over ``scale[g]``. Summed per row in a fixed order, so a row's code does not depend on the rows
    beside it; no (rows, width) difference matrix is built. A row with a difference that is not finite in
    any column, ``rest`` (the columns of no group) included, is close in nothing (code 0), as it was when
    every group's distance came from one product over all the columns.
    """
    n, g = len(others), len(scale)
    out = np.zeros(n, np.int64)
    ratio = np.empty(g)
    for i in range(n):
        r = ref_of[i]
        finite = True
        for k in range(g):
            acc = 0.0
            for at in range(starts[k], starts[k + 1]):
                c = columns[at]
                d = np.float32(others[i, c] - references[r, c])
                square = d * d
                finite &= np.isfinite(square)
                acc += np.float64(square) * weights[at]
            ratio[k] = np.sqrt(acc) / scale[k]
        for c in rest:
            d = np.float32(others[i, c] - references[r, c])
            finite &= np.isfinite(d * d)
        if g == 0 or not finite:
            continue
        if g == 1:
            out[i] = 1 if ratio[0] < close else 0
            continue
        a, b = _two_smallest(ratio)
        if not ratio[a] < close:
            out[i] = 0
        elif not ratio[b] < close:
            out[i] = 1 + a
        else:
            out[i] = 1 + g + a * g + b
    return out


@numba.njit(nogil=True, cache=True)
def _two_smallest(values: np.ndarray) -> tuple[int, int]:
    """The places of the smallest and the next smallest of ``values`` (len >= 2), the first of equals first,
    NaN after every number: the first two places of a stable argsort."""
    a, b = -1, -1
    for k in range(len(values)):
        if a < 0 or _before(values[k], values[a]):
            a, b = k, a
        elif b < 0 or _before(values[k], values[b]):
            b = k
    return a, b


@numba.njit(nogil=True, cache=True)
def _before(x: float, y: float) -> bool:
    """x sorts strictly before y (NaN last)."""
    if np.isnan(x):
        return False
    return np.isnan(y) or x < y
