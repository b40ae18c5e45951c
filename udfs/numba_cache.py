"""A numba cache that several processes can share: compile once, under a file lock.

librosa's kernels are numba functions cached in ``NUMBA_CACHE_DIR``. When two
fresh processes (two Spark workers, a process pool) compile and write the same
cache entries at once, the files can end up inconsistent, and every later
process that loads them segfaults. :func:`warm_up` runs the feature code once
on a short synthetic clip while holding an exclusive lock in the cache folder:
the first process compiles and writes, the others wait, then load.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".earshot-numba.lock"
_warm = False


def warm_up(cache_dir: str) -> None:
    """Compile (or load) librosa's kernels once per process, serialised across processes."""
    global _warm
    if _warm:
        return
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(os.path.join(cache_dir, LOCK_FILE), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            import numpy as np

            from udfs.features import compute_features

            sr = 22050
            t = np.arange(3 * sr, dtype=np.float32) / sr
            compute_features(y=(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr=sr)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _warm = True


if __name__ == "__main__":
    import sys

    warm_up(sys.argv[1])
