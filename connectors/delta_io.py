"""Every read and write of Delta tables: plain reads, appends, and idempotent MERGEs."""

from __future__ import annotations

from collections.abc import Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession


def table_exists(spark: SparkSession, location: str) -> bool:
    return DeltaTable.isDeltaTable(spark, location)


def read_table(spark: SparkSession, location: str) -> DataFrame:
    return spark.read.format("delta").load(location)


def write_table(df: DataFrame, location: str, *, mode: str = "overwrite") -> None:
    writer = df.write.format("delta").mode(mode)
    if mode == "overwrite":
        writer = writer.option("overwriteSchema", "true")
    writer.save(location)


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
    target = DeltaTable.forPath(spark, location)
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    if target_where:
        condition = f"({target_where}) AND {condition}"
    merge = target.alias("t").merge(df.alias("s"), condition)
    if evolve:
        merge = merge.withSchemaEvolution()
    if update:
        merge = merge.whenMatchedUpdateAll()
    metrics = merge.whenNotMatchedInsertAll().execute().collect()
    return int(metrics[0]["num_inserted_rows"]) if metrics else 0


def ensure_table(df: DataFrame, location: str) -> None:
    """Create the table from ``df``'s schema, empty, unless it exists."""
    if not table_exists(df.sparkSession, location):
        df.limit(0).write.format("delta").mode("append").save(location)


def delete_matching(spark: SparkSession, location: str, keys_df: DataFrame, *, keys: Sequence[str]) -> None:
    """Delete the rows of the table whose ``keys`` appear in ``keys_df`` (no-op without a table)."""
    if not table_exists(spark, location):
        return
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    DeltaTable.forPath(spark, location).alias("t").merge(keys_df.alias("s"), condition).whenMatchedDelete().execute()
