"""Thin pandas UDF wrappers around the pure audio core (``udfs.analyse``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import types as T
from pyspark.sql.functions import pandas_udf

ANALYSIS_TYPE = T.StructType(
    [
        T.StructField("values", T.ArrayType(T.DoubleType())),
        T.StructField("tempo", T.DoubleType()),
        T.StructField("error", T.StringType()),
        T.StructField("source_rate", T.IntegerType()),
        T.StructField("channels", T.IntegerType()),
        T.StructField("clip_s", T.DoubleType()),
        T.StructField("decode_s", T.DoubleType()),
        T.StructField("features_s", T.DoubleType()),
    ]
)


def make_analyse_udf(*, sample_rate: int, clip_seconds: float, numba_cache_dir: str):
    """An iterator pandas UDF: audio bytes -> ANALYSIS_TYPE struct, a bad file -> error, not a failed batch."""

    @pandas_udf(ANALYSIS_TYPE)  # type: ignore[call-overload]
    def analyse_audio(contents: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        # Imported here, once per Python worker: librosa and numba load slowly. The warm-up
        # compiles under a lock so that concurrent workers never write the cache at once.
        from udfs.analyse import analyse
        from udfs.numba_cache import warm_up

        warm_up(numba_cache_dir)

        for batch in contents:
            rows = [
                dataclasses.asdict(
                    analyse(bytes(c) if c is not None else b"", sample_rate=sample_rate, clip_seconds=clip_seconds)
                )
                for c in batch
            ]
            yield pd.DataFrame(rows, columns=[f.name for f in ANALYSIS_TYPE.fields])

    return analyse_audio
