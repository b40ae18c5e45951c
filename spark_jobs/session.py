"""The one Spark session builder: Delta and the Kafka connector for every job.

The connector coordinates are defined here once; ``spark-submit.sh`` and the
setup script ask this module for them (``python -m spark_jobs.session packages``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from conf.settings import REPO_ROOT, Settings

SPARK_VERSION = "4.2.0"
KAFKA_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}"
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
PACKAGES = (KAFKA_PACKAGE, DELTA_PACKAGE)
IVY_SETTINGS = REPO_ROOT / "services" / "spark" / "ivysettings.xml"
LOG4J_CONFIG = REPO_ROOT / "services" / "spark" / "log4j2.properties"
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
# Hadoop's local file system through java.nio (services/spark/localfs, built by services/setup.sh): without
# Hadoop's native library every small file a job writes on local disk forks `chmod`, `ls` or `readlink`
# from the JVM, 20 to 65 ms each; a streaming micro-batch writes several (its logs, each state store's
# changelog). Used with local masters, whose executors share the driver's JVM and class path.
LOCALFS_SOURCE = REPO_ROOT / "services" / "spark" / "localfs"
LOCALFS_CONF = {
    "spark.hadoop.fs.file.impl": "earshot.hadoop.FastLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "earshot.hadoop.FastLocalFileSystem$Fs",
}


def ivy_home(settings: Settings) -> str:
    """Where Spark's Ivy keeps the resolved connector jars (under the local state folder)."""
    return settings.paths.state_root + "/ivy"


def localfs_jar(settings: Settings) -> Path:
    """Where services/setup.sh puts the compiled local file system (its step 4b says the same path)."""
    return Path(settings.paths.state_root) / "spark" / "earshot-localfs.jar"


def local_master_conf(settings: Settings) -> dict[str, str]:
    """What a local master adds: the java.nio local file system, when setup has built it (else Hadoop's own)."""
    jar = localfs_jar(settings)
    if not jar.is_file():
        return {}
    return {"spark.driver.extraClassPath": str(jar), **LOCALFS_CONF}


def launched_by_spark_submit() -> bool:
    """True when spark-submit started this interpreter (it then owns master and packages)."""
    # spark-submit hands the Python driver a gateway port; a plain interpreter has none.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_conf(settings: Settings, *, app_name: str) -> dict[str, str]:
    """The configuration every Earshot job runs with (pure: easy to inspect and test)."""
    conf = {
        "spark.app.name": f"earshot-{app_name}",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.streaming.stateStore.providerClass": ROCKSDB_PROVIDER,
        # numba compiles librosa's kernels once into a kept folder, not on every worker start.
        "spark.executorEnv.NUMBA_CACHE_DIR": settings.paths.numba_cache_dir,
        "spark.ui.showConsoleProgress": "false",
        # The stream's two queries share the cores by turns (spark_jobs/stream.py puts each in a pool of its
        # own), so the archive's MERGE does not hold the recommender's batches back; one job at a time as before.
        "spark.scheduler.mode": "FAIR",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta rebuilds table state with 50 partitions by default: most of a small local
        # job's time on 2 cores. Size it like the shuffles instead.
        "spark.databricks.delta.snapshotPartitions": str(settings.spark.shuffle_partitions),
    }
    return conf


def build_spark(settings: Settings, *, app_name: str, master: str | None = None) -> SparkSession:
    """Get or create the session; outside spark-submit it also sets master, memory and packages."""
    builder = SparkSession.builder
    for key, value in spark_conf(settings, app_name=app_name).items():
        builder = builder.config(key, value)
    if not launched_by_spark_submit():
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        master = master or settings.spark.master
        if master.startswith("local"):
            for key, value in local_master_conf(settings).items():
                builder = builder.config(key, value)
        builder = (
            builder.master(master)
            .config("spark.jars.packages", ",".join(PACKAGES))
            .config("spark.jars.ivySettings", str(IVY_SETTINGS))
            .config("spark.jars.ivy", ivy_home(settings))
            .config("spark.driver.memory", settings.spark.driver_memory)
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}")
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


if __name__ == "__main__":
    if sys.argv[1:] == ["packages"]:
        sys.stdout.write(",".join(PACKAGES) + "\n")
    elif sys.argv[1:] == ["warm-cache"]:
        # Resolve the connector jars into the Ivy cache; later starts need no network.
        from conf.settings import load_settings

        build_spark(load_settings(), app_name="warm-cache", master="local[1]").stop()
    elif sys.argv[1:] == ["ivy-settings"]:
        sys.stdout.write(f"{IVY_SETTINGS}\n")
    elif sys.argv[1:] == ["log4j-config"]:
        sys.stdout.write(f"{LOG4J_CONFIG}\n")

    else:
        sys.stderr.write("usage: python -m spark_jobs.session packages|ivy-settings|log4j-config|warm-cache\n")
        sys.exit(2)
