"""Shared fixtures: test settings, the real local stack, one Spark session.

Integration tests use the real Kafka broker, FerretDB and Spark. The ``stack``
fixture reuses healthy services or starts them (and then stops them at the
end); test data goes to a separate Mongo database and temporary lake roots.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conf.settings import QUICK_JIT, REPO_ROOT, Settings, load_settings

TEST_DATABASE = "earshot_test"

# Before any test module imports librosa: numba reads its cache folder at import, and this
# process must share the kept cache (and its lock) with the Spark workers, not a second one.
os.environ.setdefault("NUMBA_CACHE_DIR", load_settings().paths.numba_cache_dir)


def isolated_environ(tmp_root: Path, **extra: str) -> dict[str, str]:
    """The environment a test job runs with: real services, isolated data."""
    env = dict(os.environ)
    env.update(
        {
            "MONGO_DATABASE": TEST_DATABASE,
            "EARSHOT_LAKE_ROOT": str(tmp_root / "lake"),
            "EARSHOT_INDEX_ROOT": str(tmp_root / "index"),
            "EARSHOT_CHECKPOINT_ROOT": str(tmp_root / "checkpoints"),
            "EARSHOT__SPARK__SHUFFLE_PARTITIONS": "2",
            # Every Spark JVM of the suite lives seconds to minutes: the JIT's quick tier halves their CPU.
            "EARSHOT__SPARK__JVM_OPTIONS": QUICK_JIT,
        }
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("earshot")


@pytest.fixture(scope="session")
def job_env(tmp_root: Path) -> dict[str, str]:
    return isolated_environ(tmp_root)


@pytest.fixture(scope="session")
def settings(job_env: dict[str, str]) -> Settings:
    return load_settings(job_env)


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Settings]:
    """The real local Kafka broker and FerretDB: reused when healthy, else started and stopped."""
    from services import stack as local_stack

    already = local_stack.kafka_healthy(settings) and local_stack.mongo_healthy(settings)
    if not already:
        local_stack.up(settings)
    else:
        local_stack.ensure_topics(settings)
    yield settings
    if not already and not os.environ.get("EARSHOT_KEEP_STACK"):
        local_stack.down(settings)


@pytest.fixture(scope="session")
def spark(settings: Settings):
    from spark_jobs.session import build_spark

    # This JVM lives as long as the suite: the full JIT pays off here (the jobs' and streams' short JVMs keep
    # the quick tier that isolated_environ gives them).
    long_lived = dataclasses.replace(settings, spark=dataclasses.replace(settings.spark, jvm_options=""))
    session = build_spark(long_lived, app_name="tests", master="local[2]")
    yield session
    session.stop()


@pytest.fixture()
def mongo_db(stack: Settings):
    """A fresh, uniquely named database on the real server, dropped afterwards."""
    from connectors import mongo_io

    client = mongo_io.connect(stack)
    name = f"{TEST_DATABASE}_{uuid.uuid4().hex[:8]}"
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
