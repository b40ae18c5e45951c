"""The stream's state layout, recorded in its checkpoint: a different bucket count or layout fails at start.

A listener's bucket is ``pmod(xxhash64(user id), stream.state_buckets)``; the state is keyed by a number per
bucket, and Spark sends each key to the stateful task ``pmod(murmur3(key), partitions)``. With the bucket
number itself as the key (``listener-buckets-v1``), 16 buckets fell 9 and 7 into two tasks, 10, 3 and 3 into
three: the batch waited for the task with the most. A checkpoint begun by this version
(``listener-buckets-v2``) keys bucket i by the i-th of :func:`bucket_keys`, numbers whose murmur3 hashes
leave each remainder modulo the bucket count once, so any task count that divides it (2, 4, 8 of 16) gets
the same number of buckets. A checkpoint recorded as v1 keeps its keys (its state is stored under them).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from conf.errors import JobInputError

LAYOUT = "listener-buckets-v1"  # bucket i is state key i
BALANCED = "listener-buckets-v2"  # bucket i is state key bucket_keys(buckets)[i]
LAYOUT_FILE = "earshot-state.json"
_MASK = 0xFFFFFFFF


def check_layout(checkpoint: str, buckets: int) -> list[int]:
    """The state key of each bucket in this checkpoint: a new one is recorded with the balanced layout;
    one written with another bucket count, or before buckets, is refused.

    A remote checkpoint (``hdfs://``, ``s3a://``) is not read here: its buckets keep the v1 keys, the ones
    every earlier version used (the operator keeps ``stream.state_buckets`` fixed, README).
    """
    if "://" in checkpoint and not checkpoint.startswith("file://"):
        return list(range(buckets))
    root = Path(checkpoint.removeprefix("file://"))
    marker = root / LAYOUT_FILE
    if marker.exists():
        have = json.loads(marker.read_text())
        if have.get("buckets") != buckets or have.get("layout") not in (LAYOUT, BALANCED):
            raise JobInputError(
                f"the checkpoint {root} holds listener state in {have.get('buckets')} buckets "
                f"({have.get('layout')}), but stream.state_buckets is {buckets}: set it back to "
                f"{have.get('buckets')}, or start from a new paths.checkpoint_root"
            )
        return bucket_keys(buckets) if have["layout"] == BALANCED else list(range(buckets))
    if (root / "offsets").is_dir() and any((root / "offsets").iterdir()):
        raise JobInputError(
            f"the checkpoint {root} was written by an earlier Earshot with one state entry per listener key; "
            "this version keeps listeners in buckets: start from a new paths.checkpoint_root "
            "(events stay in Kafka and are read again from the earliest offset)"
        )
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"layout": BALANCED, "buckets": buckets}))
    return bucket_keys(buckets)


@cache
def bucket_keys(buckets: int) -> list[int]:
    """The smallest non-negative numbers whose Spark hashes leave the remainders 0..buckets-1 modulo
    ``buckets``, in that order: bucket i's state key."""
    keys: list[int | None] = [None] * buckets
    left, candidate = buckets, 0
    while left:
        slot = spark_int_hash(candidate) % buckets  # Python's % is Spark's pmod for a positive divisor
        if keys[slot] is None:
            keys[slot], left = candidate, left - 1
        candidate += 1
    return [int(k) for k in keys if k is not None]


def spark_int_hash(value: int, seed: int = 42) -> int:
    """Spark's ``hash()`` of an int column (Murmur3 x86 32-bit, seed 42), as its HashPartitioning computes it."""

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & _MASK

    k1 = rotl((value & _MASK) * 0xCC9E2D51 & _MASK, 15) * 0x1B873593 & _MASK
    h1 = (rotl((seed ^ k1) & _MASK, 13) * 5 + 0xE6546B64) & _MASK
    h1 ^= 4  # the input's length in bytes
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & _MASK
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & _MASK
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 >= 1 << 31 else h1
