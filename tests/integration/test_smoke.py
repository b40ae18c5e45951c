"""The smoke job through the real launcher: spark-submit, Delta, Kafka connector, MongoDB."""

from __future__ import annotations

import subprocess

import pytest

from conf.settings import REPO_ROOT

pytestmark = [pytest.mark.spark, pytest.mark.kafka, pytest.mark.mongo]


def test_smoke_job_passes_on_local_2(stack, job_env):
    result = subprocess.run(
        [str(REPO_ROOT / "spark-submit.sh"), "--master", "local[2]", "smoke", "--rows", "10"],
        capture_output=True,
        text=True,
        timeout=600,
        env=job_env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "smoke: all wiring works" in result.stdout
    for part in ("delta    ok", "kafka    ok", "mongodb  ok"):
        assert part in result.stdout


def test_unreachable_broker_is_one_clear_line(job_env):
    env = {**job_env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = subprocess.run(
        [str(REPO_ROOT / "spark-submit.sh"), "--master", "local[1]", "smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 2
    # spark-submit's PythonRunner merges the driver's stderr into stdout.
    output = result.stdout + result.stderr
    ours = [line for line in output.splitlines() if line.startswith("earshot smoke:")]
    assert len(ours) == 1
    assert ours[0].startswith("earshot smoke: cannot reach Kafka at 127.0.0.1:1")
    assert "services/local-stack.sh up" in ours[0]
    assert "Traceback" not in output
