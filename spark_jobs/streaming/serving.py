"""The stream's serving writes: listeners' ``recommendations`` documents, upserted from the executors.

Each Python worker keeps one client per URI and one writer thread for its life;
the stateful step hands it chunks of documents (:meth:`Serving.submit`) and
waits for them before its rows leave, so a failed write fails the task before
its state is committed.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from conf.settings import Settings
from connectors import mongo_io


@dataclass(frozen=True)
class ExecutorStore:
    """The serving store as executors reach it: its address, not the settings (which stay on the driver)."""

    uri: str
    database: str
    timeout_ms: int
    retry_s: float = 120.0  # how long an executor waits out a database that does not answer

    @classmethod
    def of(cls, settings: Settings):
        m = settings.mongo
        return cls(m.uri, m.database, m.timeout_ms, m.write_retry_seconds)

    def db(self):
        """This Python worker's client's database (one client per worker and URI)."""
        return client(self.uri, self.timeout_ms)[self.database]


@dataclass(frozen=True)
class Serving(ExecutorStore):
    """Where the executors write ``recommendations``."""

    def write(self, docs: list[dict]) -> None:
        """Upsert ``docs``; while the server is unreachable, retry with backoff for up to ``retry_s``.

        Upserts are idempotent, so a retried command that had in fact been applied changes nothing;
        the batch (and its state) waits instead of failing at the first lost connection.
        """
        if not docs:
            return

        def write() -> None:
            mongo_io.upsert_many(self.db(), "recommendations", docs, clean=False)  # built here: plain values, safe keys

        mongo_io.retrying(write, seconds=self.retry_s, what=f"recommendations of {len(docs)} listeners")

    def submit(self, docs: list[dict]) -> Future:
        """:meth:`write` on this process's writer thread; the future gives (done at, epoch ms; took, ms)."""

        def timed() -> tuple[float, float]:
            started = time.perf_counter()
            self.write(docs)
            return time.time() * 1000, (time.perf_counter() - started) * 1000

        return _writer().submit(timed)


@functools.cache
def _writer() -> ThreadPoolExecutor:
    """One writer thread per Python worker (asked for by the task's thread): a task's serving writes go out in order,
    beside its computing."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="earshot-serving")


@functools.cache
def client(uri: str, timeout_ms: int):
    """One client per Python worker and URI, kept for the worker's life."""
    return mongo_io.connect_uri(uri, timeout_ms=timeout_ms)
