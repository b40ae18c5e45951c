"""Regression: two fresh processes filling one numba cache at once left it corrupt, and every
later process that loaded it segfaulted (Spark's two workers did it on a fresh machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT
from udfs.numba_cache import READY_FILE, install_stamp

pytestmark = pytest.mark.unit

SCRIPT = """
import sys
import numpy as np
from udfs.numba_cache import warm_up
warm_up(sys.argv[1])
from udfs.features import compute_features
t = np.arange(22050 * 4, dtype=np.float32) / 22050
row = compute_features(y=(0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr=22050)
print("ok", round(float(row.values.sum()), 3))
"""


def test_concurrent_first_compiles_leave_a_cache_others_can_load(tmp_path: Path):
    cache = tmp_path / "numba"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-c", SCRIPT, str(cache)]
    first = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in first]
    assert [p.returncode for p in first] == [0, 0, 0], [o[1][-2000:] for o in outs]
    later = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert later.returncode == 0, later.stderr[-2000:]  # a segfault is -11
    assert all(later.stdout.split() == o[0].split() for o in outs)
    # Stamped complete, the cache is then loaded by several processes at once (a shared lock): same answers.
    assert (cache / READY_FILE).read_text() == install_stamp()
    loaders = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    assert [(p.communicate(timeout=300)[0].split(), p.returncode) for p in loaders] == [(later.stdout.split(), 0)] * 3


def test_a_cache_stamped_by_another_install_is_filled_again_under_the_exclusive_lock(tmp_path: Path):
    cache = tmp_path / "numba"
    cache.mkdir()
    (cache / READY_FILE).write_text("numba 0.0 0; librosa 0.0 0")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(cache)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (cache / READY_FILE).read_text() == install_stamp()
