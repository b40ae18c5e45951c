"""The layers of ARCHITECTURE.md, kept by import-linter's contracts (pyproject.toml, ``[tool.importlinter]``)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT

pytestmark = pytest.mark.unit


def contracts() -> list[dict]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]["contracts"]


def test_no_import_breaks_a_layer():
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert f"{len(contracts())} kept, 0 broken" in run.stdout


def test_architecture_md_states_every_contract():
    """The prose and the contracts say the same: each contract's name is a rule in ARCHITECTURE.md."""
    prose = " ".join((REPO_ROOT / "ARCHITECTURE.md").read_text().split())
    missing = [c["name"] for c in contracts() if c["name"] not in prose]
    assert not missing, f"ARCHITECTURE.md does not state: {missing}"
