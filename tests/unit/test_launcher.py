"""The launcher's command line: listing jobs and failing fast, without starting Spark."""

from __future__ import annotations

import subprocess

import pytest

from conf.settings import REPO_ROOT
from spark_jobs.main import JOBS

pytestmark = pytest.mark.unit


def launch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [str(REPO_ROOT / "spark-submit.sh"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_every_job():
    result = launch("--help")
    assert result.returncode == 0
    for name, (_, summary) in JOBS.items():
        assert f"  {name}" in result.stdout
        assert summary in result.stdout


def test_unknown_job_fails_with_the_job_list():
    result = launch("--master", "local[2]", "no-such-job")
    assert result.returncode == 2
    assert "unknown job 'no-such-job'" in result.stderr
    assert "smoke" in result.stderr


def test_bad_setting_is_one_clear_line():
    result = launch("smoke", env={"EARSHOT__INDEX__N_TREES": "lots"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["earshot: index.n_trees: expected int, got 'lots'"]


def test_a_pipeline_checks_every_step_before_any_runs():
    from conf.errors import EarshotError
    from spark_jobs import extract, ingest, pipeline, sample_library

    planned = pipeline.plan(["sample-library --tracks 20", "ingest", "extract --chunk-tracks 5"])
    assert [(name, module) for name, module, _ in planned] == [
        ("sample-library", sample_library),
        ("ingest", ingest),
        ("extract", extract),
    ]
    assert planned[0][2].tracks == 20 and planned[2][2].chunk_tracks == 5
    for step, says in (("stream", "'stream' is not a batch job"), ("demo", "'demo' is not"),
                       ("no-such-job", "'no-such-job' is not"), ("", "an empty step"),
                       ('extract "--limit', "No closing quotation")):  # fmt: skip
        with pytest.raises(EarshotError, match=says):
            pipeline.plan(["ingest", step])
    with pytest.raises(SystemExit) as exit_:  # argparse's own message, status 2
        pipeline.plan(["ingest", "extract --chunk-tracks many"])
    assert exit_.value.code == 2


def test_a_pipeline_stops_at_the_first_step_that_fails(monkeypatch, capsys):
    import argparse
    import types

    from conf.errors import EarshotError, JobInputError
    from spark_jobs import pipeline

    ran: list[str] = []

    def step(name: str, status: int) -> tuple[str, types.ModuleType, argparse.Namespace]:
        module = types.ModuleType(name)
        module.main = lambda settings, args: ran.append(name) or status
        return name, module, argparse.Namespace()

    monkeypatch.setattr(pipeline, "build_spark", lambda settings, app_name: None)  # no Spark: the control flow
    monkeypatch.setattr(pipeline, "plan", lambda steps: [step("ingest", 0), step("check", 1), step("build-index", 0)])
    assert pipeline.main(None, argparse.Namespace(steps=[])) == 1
    assert ran == ["ingest", "check"]
    assert "pipeline: check ended with status 1; the steps after it did not run" in capsys.readouterr().out

    def refuses(settings, args):
        raise JobInputError("no catalogue at lake/tracks; run ./spark-submit.sh ingest first")

    ran.clear()
    failing = step("extract", 0)
    failing[1].main = refuses
    monkeypatch.setattr(pipeline, "plan", lambda steps: [step("ingest", 0), failing, step("build-index", 0)])
    with pytest.raises(EarshotError, match=r"^step extract: no catalogue .*; the steps after it did not run$"):
        pipeline.main(None, argparse.Namespace(steps=[]))
    assert ran == ["ingest"]
