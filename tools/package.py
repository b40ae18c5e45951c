"""What a non-local master's executors get: ``./spark-submit.sh package`` (the launcher runs it for every such submit).

Executors on other hosts have nothing of the checkout, so the launcher ships:

- **the project's code**: every package named in ``pyproject.toml`` (``[tool.setuptools] packages``),
  zipped again at each submit into ``.earshot/dist/earshot.zip`` and passed with ``--py-files``:
  what you edited is what runs;
- **the settings**: ``conf/base.yaml`` and the overlay named by ``EARSHOT_CONF``, with ``--files``
  (a driver started on the cluster, YARN or Kubernetes cluster mode, reads them from its folder);
- **the Python environment** (``spark.python_env: pack``): the project's ``.venv`` packed into
  ``.earshot/dist/earshot-env.tar.gz``, passed with ``--archives ...#env`` and
  ``spark.pyspark.python=./env/bin/python``. It is packed again only when the installed
  distributions change (or what it leaves out). It leaves out what executors never import
  (:data:`LEFT_OUT`, :data:`LEFT_OUT_FOLDERS`): pyspark itself, because the workers' own Spark puts
  its ``pyspark.zip`` on the Python path, the dashboard, the test tools, the packages' own test
  suites, and the checkout's editable install: it packs about 780 of the venv's 1,800 MB.

The interpreter is not packed: ``env/bin/python`` is the venv's link to the Python it was made
from, which every host needs at the same path (as with venv-pack). Why not venv-pack itself: its last
release is from 2018, it cannot leave anything out (the archive would be twice the size, pyspark
included, which must not shadow the cluster's), and it predates the editable installs (PEP 660) the
project's venv holds. ``spark.python_env: none`` ships
no environment (the cluster's Python has the dependencies); any other value is an archive path or
URI (``hdfs://.../env.tar.gz``) shipped as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

from conf.settings import REPO_ROOT, Settings

DIST = "dist"  # under paths.state_root
CODE_ZIP = "earshot.zip"
ENV_ARCHIVE = "earshot-env.tar.gz"
ENV_LINK = "env"  # the folder name executors unpack the environment into
# Top-level names in site-packages that executors never import (prefixes; their .dist-info too).
LEFT_OUT = (
    "pyspark",  # the workers' Spark puts its own pyspark.zip and py4j on the Python path
    "deltalake",  # the dashboard's Delta reader
    "streamlit",
    "pydeck",
    "altair",
    "playwright",
    "hypothesis",
    "ruff",
    "pytest",
    "_pytest",
    "pip",
    "confluent_kafka",  # bench.freshness's load generator
    "arro3",  # deltalake's
    "__editable__",  # the checkout's editable install: executors must not find the checkout
    "earshot",
)
# Folders inside a package that executors never import: the packages' own test suites (pandas', numba's,
# scipy's, numpy's, pyarrow's, ...; about 130 of the 900 MB packed).
LEFT_OUT_FOLDERS = frozenset({"tests"})


def project_packages(root: Path = REPO_ROOT) -> list[str]:
    """The project's packages, as pyproject.toml lists them for setuptools."""
    with (root / "pyproject.toml").open("rb") as f:
        packages = tomllib.load(f)["tool"]["setuptools"]["packages"]
    missing = [p for p in packages if not (root / p.replace(".", "/") / "__init__.py").is_file()]
    if missing:
        raise SystemExit(f"earshot package: pyproject.toml names packages that are not here: {', '.join(missing)}")
    return [p for p in packages if "." not in p]  # a top-level package's folder holds its subpackages


def write_code_zip(out: Path, root: Path = REPO_ROOT) -> Path:
    """Zip the project's packages (sources and data files, no caches) into ``out``, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in project_packages(root):
            for path in sorted((root / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    zf.write(path, path.relative_to(root).as_posix())
    tmp.replace(out)
    return out


def _left_out(name: str) -> bool:
    top = name.split("-")[0].split(".")[0].lower()
    return any(top == p or top.startswith(p + "_") for p in LEFT_OUT)


def env_fingerprint(venv: Path) -> str:
    """Changes when a distribution is installed, removed or upgraded in the venv (or the venv is remade)."""
    site = next((venv / "lib").glob("python*/site-packages"))
    names = sorted(p.name for p in site.iterdir() if p.name.endswith(".dist-info"))
    cfg = (venv / "pyvenv.cfg").read_text()
    rules = repr((LEFT_OUT, LEFT_OUT_FOLDERS))  # what is left out changes the archive too
    return hashlib.sha256("\n".join([cfg, rules, *names]).encode()).hexdigest()[:16]


def write_env_archive(venv: Path, out: Path) -> bool:
    """Pack ``venv`` (less :data:`LEFT_OUT`) into ``out``; False when the archive there is already current."""
    stamp = out.with_name(out.name + ".stamp")
    fingerprint = env_fingerprint(venv)
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        # Relative to the venv: Spark unpacks the archive into ./env. Bytecode caches stay (tar keeps the
        # sources' times, so they stay valid): executors unpack a fresh copy per app and would compile again.
        parts = Path(info.name).parts
        if len(parts) >= 4 and parts[0] == "lib" and parts[2] == "site-packages":
            if _left_out(parts[3]) or LEFT_OUT_FOLDERS.intersection(parts[4:]):
                return None
        return info

    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        for child in sorted(venv.iterdir()):
            tar.add(child, arcname=child.name, filter=keep)
    tmp.replace(out)
    stamp.write_text(fingerprint + "\n")
    return True


def dist_folder(settings: Settings) -> Path:
    return Path(settings.paths.state_root) / DIST


def driver_folder(settings: Settings) -> Path:
    """Where a cluster driver's JVM runs: ``./env`` there is the venv, so the executors' Python path
    (``./env/bin/python``) also works for the Python the driver itself starts (the stream's
    stateful processor is first run on the driver, with the executors' interpreter path)."""
    return dist_folder(settings) / "driver"


def link_driver_env(settings: Settings, venv: Path) -> Path:
    folder = driver_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / ENV_LINK
    if link.is_symlink() and Path(os.readlink(link)) != venv.resolve():
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(venv.resolve(), target_is_directory=True)
    return folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venv", default=str(REPO_ROOT / ".venv"), help="the environment to pack (default: .venv)")
    parser.add_argument("--force", action="store_true", help="pack the environment even when it is current")
    parser.add_argument(
        "--launcher", action="store_true", help="print the spark-submit options that ship them (for spark-submit.sh)"
    )


def main(settings: Settings, args: argparse.Namespace) -> int:
    dist = dist_folder(settings)
    code = write_code_zip(dist / CODE_ZIP)
    env_opt = settings.spark.python_env
    options = ["--py-files", str(code), "--files", ",".join(str(p) for p in settings_files())]
    link_driver_env(settings, Path(args.venv))
    if env_opt == "pack":
        archive = dist / ENV_ARCHIVE
        if args.force and archive.exists():
            archive.unlink()
        started = time.monotonic()
        if write_env_archive(Path(args.venv), archive):
            size = archive.stat().st_size / 2**20
            sys.stderr.write(f"earshot package: packed {args.venv} into {archive} ({size:.0f} MiB, "
                             f"{time.monotonic() - started:.0f} s)\n")  # fmt: skip
        options += ["--archives", f"{archive}#{ENV_LINK}", "--conf", f"spark.pyspark.python=./{ENV_LINK}/bin/python"]
    elif env_opt != "none":
        options += ["--archives", f"{env_opt}#{ENV_LINK}", "--conf", f"spark.pyspark.python=./{ENV_LINK}/bin/python"]
    if args.launcher:
        sys.stdout.write("\0".join(options) + "\0")
    else:
        sys.stdout.write(f"code: {code}\n")
        if env_opt == "pack":
            sys.stdout.write(f"environment: {dist / ENV_ARCHIVE}\n")
        sys.stdout.write("spark-submit options for a non-local master: " + " ".join(options) + "\n")
    return 0


def settings_files() -> list[Path]:
    """conf/base.yaml and the overlay that EARSHOT_CONF names, if any."""
    files = [REPO_ROOT / "conf" / "base.yaml"]
    overlay = os.environ.get("EARSHOT_CONF")
    if overlay:
        path = Path(overlay)
        files.append(path if path.is_absolute() else (Path.cwd() / path))
    return files
