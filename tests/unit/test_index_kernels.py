"""The batched search's compiled kernels: cached once per host, loaded by every later process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

PROBE = (
    "import json; from index import kernels; kernels.ready(); "
    "print(json.dumps({f.__name__: [len(f.stats.cache_hits), len(f.stats.cache_misses)] "
    "for f in (kernels.score_pairs, kernels.nearest_among)}))"
)


def test_two_first_processes_compile_once_and_a_third_loads_the_cache(tmp_path):
    """Regression guard: processes that compile one numba cache at once can corrupt it (``udfs.numba_cache``);
    ``kernels.ready`` serialises them, and what it leaves loads in a later process without compiling."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    first = [subprocess.Popen([sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in first]
    assert all(p.returncode == 0 for p in first)
    assert sum(out["score_pairs"][1] for out in outs) == 1, "compiled by one of the two, loaded by the other"
    assert any(path.suffix == ".nbc" for path in (tmp_path / "cache").rglob("*"))
    later = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout) == {"score_pairs": [1, 0], "nearest_among": [1, 0]}
