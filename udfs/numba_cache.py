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
import sys
from pathlib import Path

LOCK_FILE = ".earshot-numba.lock"
READY_FILE = ".earshot-numba.ready"  # the stamp of the install whose kernels the cache holds complete
_warm = False


def install_stamp() -> str:
    """numba's and librosa's versions and install times, and Python's version: a cache written under
    one stamp holds every kernel the warm-up needs for as long as the stamp stays the same (a reinstall
    changes the files' times, and numba recompiles a kernel whose source file changed)."""
    import importlib.metadata
    import importlib.util

    parts = [sys.version.split()[0]]
    for name in ("numba", "librosa"):
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None and spec.origin else ""
        parts.append(f"{name} {importlib.metadata.version(name)} {os.stat(origin).st_mtime_ns if origin else 0}")
    return "; ".join(parts)


def warm_up(cache_dir: str) -> None:
    """Compile (or load) librosa's kernels once per process, serialised across processes while compiling.

    A cache stamped complete for this install (:data:`READY_FILE`) is only read, so processes load it
    side by side under a shared lock (two Spark workers starting together each wait for the other's
    1.5 s otherwise); a cache without the stamp is filled under the exclusive lock, then stamped.
    """
    global _warm
    if _warm:
        return
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    stamp, ready = install_stamp(), Path(cache_dir) / READY_FILE
    with open(os.path.join(cache_dir, LOCK_FILE), "w") as lock:
        complete = ready.is_file() and ready.read_text() == stamp
        fcntl.flock(lock, fcntl.LOCK_SH if complete else fcntl.LOCK_EX)
        try:
            import numpy as np

            from udfs.features import compute_features

            sr = 22050
            t = np.arange(3 * sr, dtype=np.float32) / sr
            compute_features(y=(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr=sr)
            if not complete:
                ready.write_text(stamp)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    _warm = True


if __name__ == "__main__":
    import sys

    warm_up(sys.argv[1])
