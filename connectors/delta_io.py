"""Every read and write of Delta tables: plain reads, appends, and idempotent MERGEs.

Every write here is committed again when another writer's commit conflicts with it (:func:`committing`):
the stream's archive and ``import-history`` MERGE into ``events`` side by side, and on a table that is not
partitioned Delta takes any MERGE's new files as a conflict for a MERGE that read the table meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from delta.exceptions import base as delta_errors
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("earshot.delta")

# What Delta raises at commit when another writer committed first in a way that touches what this one read;
# the commit never happened, so the write can run again from the table's new version.
CONFLICTS = (
    delta_errors.ConcurrentAppendException,
    delta_errors.ConcurrentDeleteDeleteException,
    delta_errors.ConcurrentDeleteReadException,
    delta_errors.ConcurrentTransactionException,
    delta_errors.ConcurrentWriteException,
    delta_errors.MetadataChangedException,
    delta_errors.ProtocolChangedException,  # two first writes to an empty folder
)
COMMIT_ATTEMPTS = 12  # random exponential waits up to 5 s between them: ~40 s of other writers at most
T = TypeVar("T")


def committing(write: Callable[[], T], *, what: str, attempts: int = COMMIT_ATTEMPTS) -> T:
    """Run ``write()``, and again (after a random, growing wait) while its commit conflicts with another writer's.

    For writes that read the table afresh on each run (``DeltaTable.forPath`` inside ``write``): a MERGE, an
    overwrite or an append whose commit was refused changed nothing, and the next run sees the winner's rows.
    The last conflict is raised as Delta gave it, after a log line that says how many commits were tried.
    """
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

    def said(state) -> None:
        log.warning("%s: another writer committed first (%s); committing again in %.1f s (attempt %s of %s)",
                    what, type(state.outcome.exception()).__name__, state.upcoming_sleep,
                    state.attempt_number + 1, attempts)  # fmt: skip

    def gave_up(state) -> None:  # called after each conflicting attempt; the last is raised next
        if state.attempt_number >= attempts:
            log.error("%s: still conflicting with other writers after %s commits", what, state.attempt_number)

    for attempt in Retrying(
        retry=retry_if_exception_type(CONFLICTS),
        wait=wait_random_exponential(multiplier=0.25, max=5.0),
        stop=stop_after_attempt(attempts),
        before_sleep=said,
        after=gave_up,
        reraise=True,
    ):
        with attempt:
            return write()
    raise AssertionError("not reached: the last attempt returns or raises")


def table_exists(spark: SparkSession, location: str) -> bool:
    return DeltaTable.isDeltaTable(spark, location)


def read_table(spark: SparkSession, location: str) -> DataFrame:
    return spark.read.format("delta").load(location)


def write_table(df: DataFrame, location: str, *, mode: str = "overwrite") -> None:
    writer = df.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    committing(lambda: writer.save(location), what=f"writing {location}")


def merge_upsert(
    spark: SparkSession,
    df: DataFrame,
    location: str,
    *,
    keys: Sequence[str],
    update: bool = True,
    evolve: bool = False,
    target_where: str | None = None,
) -> int:
    """MERGE ``df`` into the table on ``keys``: a replayed batch changes nothing; returns the rows inserted.

    The table is created from ``df``'s schema the first time. With ``update``
    False, existing rows are kept as they are (insert-only, for append logs).
    With ``evolve``, columns of ``df`` that the table lacks are added to it
    (older rows read them as null). ``target_where`` is a condition on the
    table's rows alone (``t.<column>``): Delta skips the files whose column
    statistics rule it out, so a MERGE touches only the part of a large table
    where its rows can match.
    """
    ensure_table(df, location)  # an empty first batch still creates the table, so readers find it
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    if target_where:
        condition = f"({target_where}) AND {condition}"

    def merged() -> int:
        merge = DeltaTable.forPath(spark, location).alias("t").merge(df.alias("s"), condition)
        if evolve:
            merge = merge.withSchemaEvolution()
        if update:
            merge = merge.whenMatchedUpdateAll()
        metrics = merge.whenNotMatchedInsertAll().execute().collect()
        return int(metrics[0]["num_inserted_rows"]) if metrics else 0

    return committing(merged, what=f"MERGE into {location}")


def ensure_table(df: DataFrame, location: str) -> None:
    """Create the table from ``df``'s schema, empty, unless it exists."""
    if not table_exists(df.sparkSession, location):
        committing(lambda: df.limit(0).write.format("delta").mode("append").save(location),
                   what=f"creating {location}")  # fmt: skip


def delete_matching(spark: SparkSession, location: str, keys_df: DataFrame, *, keys: Sequence[str]) -> None:
    """Delete the rows of the table whose ``keys`` appear in ``keys_df`` (no-op without a table)."""
    if not table_exists(spark, location):
        return
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)

    def deleted() -> None:
        target = DeltaTable.forPath(spark, location).alias("t")
        target.merge(keys_df.alias("s"), condition).whenMatchedDelete().execute()

    committing(deleted, what=f"deleting from {location}")
