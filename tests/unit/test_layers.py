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


PACKAGES = ("api", "bench", "conf", "connectors", "dashboard", "events", "history", "index", "recommend", "services",
            "spark_jobs", "spark_jobs/streaming", "tools", "udfs")  # fmt: skip


def module_section() -> str:
    """ARCHITECTURE.md's "Modules" section as the code says it: each module with its docstring's first paragraph."""
    import ast

    out = ["## Modules", ""]
    for package in PACKAGES:
        out += [f"### `{package}/`", ""]
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            doc = ast.get_docstring(ast.parse(path.read_text()))
            if path.name == "__init__.py" and not doc:
                continue
            opening = " ".join((doc or "(no docstring)").split("\n\n")[0].split())
            out.append(f"- `{path.name}`: {opening}")
        out.append("")
    return "\n".join(out)


def test_architecture_md_lists_every_module_by_its_opening_line():
    """Regenerate with ``.venv/bin/python -m tests.unit.test_layers`` after adding a module or changing its opening."""
    text = (REPO_ROOT / "ARCHITECTURE.md").read_text()
    assert text[text.index("## Modules") :].strip() == module_section().strip()


MAX_FUNCTION_LINES = 60


def test_no_function_outside_bench_is_over_60_lines():
    """A function that does not fit on a screen does more than one thing (bench/'s measurements are exempt)."""
    import ast

    long = []
    for package in PACKAGES:
        if package == "bench":
            continue
        for path in sorted((REPO_ROOT / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{package}/{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


if __name__ == "__main__":
    path = REPO_ROOT / "ARCHITECTURE.md"
    text = path.read_text()
    path.write_text(text[: text.index("## Modules")] + module_section().strip() + "\n")
