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
        T.StructField("embedding", T.ArrayType(T.FloatType())),
        T.StructField("embedding_s", T.DoubleType()),
    ]
)


def make_analyse_udf(
    *, sample_rate: int, clip_seconds: float, numba_cache_dir: str, time_limit_s: float = 0.0, weights=None
):
    """An iterator pandas UDF: audio bytes -> ANALYSIS_TYPE struct, a bad file -> error, not a failed batch.

    With ``time_limit_s > 0`` each track is analysed in a child process under that limit
    (``udfs.isolated``): a file that hangs or crashes the decoder is an error row, not a failed task.
    ``weights`` (``udfs.musicnn.Weights``, about 2 MB, shipped in the UDF's closure) adds each track's
    musicnn embedding.
    """

    @pandas_udf(ANALYSIS_TYPE)  # type: ignore[call-overload]
    def analyse_audio(contents: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        # Imported here, once per Python worker: librosa and numba load slowly. The warm-up
        # compiles under a lock so that concurrent workers never write the cache at once.
        from udfs.isolated import IsolatedAnalyser
        from udfs.numba_cache import warm_up

        warm_up(numba_cache_dir)  # before the child is forked: it inherits the compiled kernels
        # One BLAS thread per task: Spark already runs a task per core, and the embedding's
        # matrix products would otherwise oversubscribe them.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)

        with IsolatedAnalyser(
            sample_rate=sample_rate, clip_seconds=clip_seconds, time_limit_s=time_limit_s, weights=weights
        ) as run:
            for batch in contents:
                rows = [dataclasses.asdict(run(bytes(c) if c is not None else b"")) for c in batch]
                yield pd.DataFrame(rows, columns=[f.name for f in ANALYSIS_TYPE.fields])

    return analyse_audio
