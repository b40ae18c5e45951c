"""environment.yml and pyproject.toml carry the same pins."""

from __future__ import annotations

import tomllib

import pytest
import yaml

from conf.settings import REPO_ROOT

pytestmark = pytest.mark.unit


def test_conda_environment_pins_match_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {p for p in pip_section if "==" in p}
    assert conda_pins == pins
