"""What the launcher ships to a non-local master: the project's code and the packed environment."""

from __future__ import annotations

import os
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT
from tools import package

pytestmark = pytest.mark.unit


def test_the_code_zip_holds_every_package_pyproject_names_with_its_data_files(tmp_path):
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        named = tomllib.load(f)["tool"]["setuptools"]["packages"]
    assert package.project_packages() == [p for p in named if "." not in p] and "events" in named
    names = set(zipfile.ZipFile(package.write_code_zip(tmp_path / "code.zip")).namelist())
    assert {f"{p.replace('.', '/')}/__init__.py" for p in named} <= names
    assert {"events/listening-event.schema.json", "conf/base.yaml", "spark_jobs/streaming/state.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def fake_venv(root: Path) -> Path:
    venv = root / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    for name in ("numpy", "pyspark", "delta", "streamlit", "librosa"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("")
    for name in ("numpy-2.3.5.dist-info", "pyspark-4.2.0.dist-info", "earshot-0.1.0.dist-info"):
        (site / name).mkdir()
    (site / "numpy" / "_core" / "tests").mkdir(parents=True)
    (site / "numpy" / "_core" / "tests" / "test_dtype.py").write_text("")
    (site / "numpy" / "testing").mkdir()
    (site / "numpy" / "testing" / "__init__.py").write_text("")  # imported at run time: kept
    (site / "__editable__.earshot-0.1.0.pth").write_text("import finder")
    (site / "__editable___earshot_0_1_0_finder.py").write_text("")
    (venv / "bin").mkdir()
    os.symlink("/usr/bin/python3", venv / "bin" / "python")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return venv


def test_the_environment_archive_leaves_out_spark_the_dashboard_the_test_suites_and_the_editable_checkout(tmp_path):
    venv = fake_venv(tmp_path)
    out = tmp_path / "dist" / "env.tar.gz"
    assert package.write_env_archive(venv, out)
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    site = "lib/python3.11/site-packages"  # at the archive's top: Spark unpacks it into ./env
    kept = {"numpy/__init__.py", "numpy/testing/__init__.py", "librosa/__init__.py", "delta/__init__.py"}
    assert {f"{site}/{name}" for name in kept} <= set(members)
    assert not [n for n in members if "/tests" in n], "a package's own test suite is not shipped"
    assert members["bin/python"].issym(), "the interpreter stays a link to the venv's Python"
    left_out = [n for n in members if any(x in n for x in ("pyspark", "streamlit", "__editable__", "earshot-0"))]
    assert not left_out


def test_the_environment_is_packed_again_only_when_its_distributions_change(tmp_path):
    venv = fake_venv(tmp_path)
    out = tmp_path / "env.tar.gz"
    assert package.write_env_archive(venv, out)
    assert not package.write_env_archive(venv, out), "current: not packed again"
    (venv / "lib" / "python3.11" / "site-packages" / "soxr-1.0.0.dist-info").mkdir()
    assert package.write_env_archive(venv, out), "a new distribution: packed again"
