"""Spark's Python daemon in local mode, with the audio analysis loaded before it forks a worker.

Spark starts one daemon per executor (``spark.python.daemon.module``) and forks
every Python worker from it. Loaded here once (librosa, scipy and numba's cached
kernels: about 2.3 s of a core), the analysis is already in each worker's memory
at its fork, where otherwise every worker of ``extract`` would load it for itself,
both workers of a local[2] run at the same time at the start of the job. Other
jobs' workers carry the loaded modules unused (shared with the daemon's pages).
``NUMBA_CACHE_DIR`` comes from the executors' environment
(``paths.numba_cache_dir``); without it the daemon loads nothing and is Spark's own.
Nothing may be printed to stdout here: the daemon's first output is its port.
"""

from __future__ import annotations

import os

from pyspark import daemon


def main() -> None:
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if cache:
        from udfs.numba_cache import warm_up

        warm_up(cache)
    daemon.manager()


if __name__ == "__main__":
    main()
