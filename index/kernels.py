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

Compiled on first use in each process (about a second), not cached on disk: processes that compile the
same cache entries at once can leave them inconsistent (``udfs.numba_cache``).
"""

from __future__ import annotations

import numba
import numpy as np

NONE = np.iinfo(np.int64).max  # the sort key of an empty slot


@numba.njit(nogil=True, cache=False)
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


@numba.njit(nogil=True, cache=False, fastmath={"reassoc", "contract"})
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """One dot product; the compiled loop's summation order is fixed, whatever else is being scored."""
    total = 0.0
    for j in range(len(a)):
        total += a[j] * b[j]
    return total


@numba.njit(nogil=True, cache=False)
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


@numba.njit(nogil=True, cache=False)
def sorted_hits(heap_keys: np.ndarray, heap_flats: np.ndarray, heap_size: np.ndarray):
    """Every query's heap, nearest first, as flat (query, key, flat position) arrays sorted by query."""
    total = heap_size.sum()
    query = np.empty(total, np.int64)
    keys = np.empty(total, np.int64)
    flats = np.empty(total, np.int64)
    at = 0
    for q in range(len(heap_size)):
        size = heap_size[q]
        order = np.argsort(heap_keys[q, :size])
        for j in range(size):
            query[at] = q
            keys[at] = heap_keys[q, order[j]]
            flats[at] = heap_flats[q, order[j]]
            at += 1
    return query, keys, flats
