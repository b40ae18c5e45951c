"""The one Spark session builder: Delta and the Kafka connector for every job.

The connector coordinates are defined here once; ``spark-submit.sh`` and the
setup script ask this module for them (``python -m spark_jobs.session packages``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession

from conf.settings import REPO_ROOT, Settings

SPARK_VERSION = "4.2.0"
KAFKA_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}"
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
PACKAGES = (KAFKA_PACKAGE, DELTA_PACKAGE)
IVY_SETTINGS = REPO_ROOT / "services" / "spark" / "ivysettings.xml"
LOG4J_CONFIG = REPO_ROOT / "services" / "spark" / "log4j2.properties"
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
QUIET_CDS = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")  # an unusable class archive is not worth a warning per job
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


def connector_list(settings: Settings) -> Path:
    """Where setup's step 4 lists the connectors' jars for local masters (:func:`resolve_connectors`): the
    packages on the first line, then one jar a line."""
    return Path(ivy_home(settings)) / "earshot-jars.txt"


def connector_jars(settings: Settings) -> list[str]:
    """The connectors' jars as setup listed them, or [] when that list is missing, was made for other packages,
    or names a jar that is gone (a job then has Ivy resolve them as it starts)."""
    try:
        lines = connector_list(settings).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    jars = lines[1:]
    if not lines or lines[0] != ",".join(PACKAGES) or not jars or not all(Path(j).is_file() for j in jars):
        return []
    return jars


def connector_conf(settings: Settings, *, local: bool = False) -> dict[str, str]:
    """The connectors' coordinates and where Ivy keeps them (resolved offline once setup has fetched them);
    nothing for a local master whose jars setup has listed: :func:`connector_environ` puts them on its
    class path, which saves each job's Ivy resolution (about 2 s of a job's start here) and lets the
    class archive hold their classes too."""
    if local and connector_jars(settings):
        return {}
    return {
        "spark.jars.packages": ",".join(PACKAGES),
        "spark.jars.ivySettings": str(IVY_SETTINGS),
        "spark.jars.ivy": ivy_home(settings),
    }


def connector_environ(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """What a local master's spark-submit adds to ``environ``: the listed connector jars in
    SPARK_DIST_CLASSPATH, which Spark's launcher puts after its own jars, so a class both have (an older
    Jackson, Parquet or Hadoop that the connectors depend on) comes from Spark's, as it does for the jars
    ``spark.jars.packages`` adds in a loader below Spark's. Empty when setup has not listed them."""
    jars = connector_jars(settings)
    if not jars:
        return {}
    return {"SPARK_DIST_CLASSPATH": os.pathsep.join([p for p in [environ.get("SPARK_DIST_CLASSPATH")] if p] + jars)}


def resolve_connectors(settings: Settings) -> list[str]:
    """Resolve the connectors with Ivy (from Maven Central the first time, then from ``spark.jars.ivy``) and
    list the jars they came to, for local masters: setup's step 4."""
    spark = build_spark(settings, app_name="warm-cache", master="local[1]", resolve=True)
    try:
        resolved = spark.sparkContext.getConf().get("spark.jars", "").split(",")
    finally:
        spark.stop()
    jars = [unquote(urlparse(j).path) if j.startswith("file:") else j for j in resolved if j]
    listing = connector_list(settings)
    partial = listing.with_suffix(".partial")
    partial.write_text("\n".join([",".join(PACKAGES), *jars]) + "\n", encoding="utf-8")
    partial.replace(listing)
    return jars


def local_master_conf(settings: Settings) -> dict[str, str]:
    """What a local master adds: the java.nio local file system, when setup has built it (else Hadoop's own)."""
    jar = localfs_jar(settings)
    if not jar.is_file():
        return {}
    return {"spark.driver.extraClassPath": str(jar), **LOCALFS_CONF}


def class_archive(settings: Settings) -> Path:
    """Where services/setup.sh puts the driver JVM's class archive (its step 4c says the same path)."""
    return Path(settings.paths.state_root) / "spark" / "driver-classes.jsa"


def jvm_conf(settings: Settings) -> dict[str, str]:
    """The JVMs' options: the driver's log4j configuration and class archive, and ``spark.jvm_options``.

    The class archive (a dynamic CDS archive of the classes a Spark driver loads, made once by setup)
    maps Spark's classes in at start instead of loading, verifying and linking each of the ten
    thousand: a small job's driver spends about a third less CPU. An archive that does not match the
    JVM or its class path (a cluster-mode driver, an upgraded pyspark before setup runs again) is
    left unused without a word, as is a missing one.
    """
    extra = settings.spark.jvm_options.strip()
    driver = [f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"]
    archive = class_archive(settings)
    if archive.is_file():
        driver += [f"-XX:SharedArchiveFile={archive}", *QUIET_CDS]
    conf = {"spark.driver.extraJavaOptions": " ".join([*driver, extra]).strip()}
    if extra:
        conf["spark.executor.extraJavaOptions"] = extra
    return conf


def write_class_archive(settings: Settings) -> None:
    """Run a small job of every kind the project runs (Delta, Arrow and pandas UDFs, a stateful stream) in a
    driver JVM that archives the classes it loaded when it exits: services/setup.sh's step 4c."""
    import subprocess
    import tempfile

    archive = class_archive(settings)
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    with tempfile.TemporaryDirectory(prefix="earshot-classes-") as work:
        options = [f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-XX:ArchiveClassesAtExit={partial}", *QUIET_CDS]
        conf = {**connector_conf(settings, local=True), **local_master_conf(settings)}
        command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]",
                   *(arg for k, v in conf.items() for arg in ("--conf", f"{k}={v}")),
                   "--driver-java-options", " ".join(options), __file__, "class-workload", work]  # fmt: skip
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        env.update(connector_environ(settings, os.environ))
        subprocess.run(command, check=True, env=env, stdin=subprocess.DEVNULL)
    partial.replace(archive)


def _class_workload(work: Path) -> None:
    """What :func:`write_class_archive`'s driver runs: the kinds of work whose classes are worth archiving."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from conf.settings import load_settings

    spark = build_spark(load_settings(), app_name="class-archive")
    rows = spark.range(2000).withColumn("g", F.col("id") % 7)
    table = str(work / "delta")
    rows.write.format("delta").save(table)
    merge = DeltaTable.forPath(spark, table).alias("t").merge(rows.alias("s"), "t.id = s.id")
    merge.whenNotMatchedInsertAll().execute()
    spark.read.format("delta").load(table).groupBy("g").agg(F.count("*"), F.avg("id")).collect()
    rows.mapInPandas(lambda frames: (f.assign(id=f["id"] // 2) for f in frames), schema=rows.schema).toPandas()
    rows.groupBy("g").applyInPandas(lambda frame: frame, schema=rows.schema).count()
    ticks = spark.readStream.format("rate").option("rowsPerSecond", 100).load()
    query = (
        ticks.groupBy((F.col("value") % 5).alias("k")).count().writeStream.outputMode("update")
        .option("checkpointLocation", str(work / "checkpoint")).foreachBatch(lambda batch, _: batch.toPandas())
        .trigger(processingTime="1 second").start()
    )  # fmt: skip
    while query.lastProgress is None or query.lastProgress["batchId"] < 2:
        query.awaitTermination(0.5)
    query.stop()
    spark.stop()


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


def build_spark(settings: Settings, *, app_name: str, master: str | None = None, resolve: bool = False) -> SparkSession:
    """Get or create the session; outside spark-submit it also sets master, memory and the connectors
    (``resolve``: through Ivy even where setup has listed their jars)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        # A pipeline's later steps (or a test's shared session): what the builder would do, without its
        # warning that only the runtime SQL settings take effect.
        for key, value in spark_conf(settings, app_name=app_name).items():
            if active.conf.isModifiable(key):
                active.conf.set(key, value)
        return active
    builder = SparkSession.builder
    for key, value in spark_conf(settings, app_name=app_name).items():
        builder = builder.config(key, value)
    environ: dict[str, str] = {}  # what the JVM that pyspark starts gets besides this process's environment
    if not launched_by_spark_submit():
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        master = master or settings.spark.master
        local = master.startswith("local") and not resolve
        if master.startswith("local"):
            for key, value in local_master_conf(settings).items():
                builder = builder.config(key, value)
        builder = builder.master(master).config("spark.driver.memory", settings.spark.driver_memory)
        for key, value in {**connector_conf(settings, local=local), **jvm_conf(settings)}.items():
            builder = builder.config(key, value)
        environ = connector_environ(settings, os.environ) if local else {}
    with _environ(environ):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


@contextlib.contextmanager
def session_settings(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """``settings`` in the session's runtime configuration for the duration, then as they were (unset if
    they were): a job's tuning does not leak into the later steps of a ``pipeline`` sharing its session."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


@contextlib.contextmanager
def _environ(extra: Mapping[str, str]) -> Iterator[None]:
    """``extra`` in this process's environment for the duration, then as it was."""
    before = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


if __name__ == "__main__":
    if sys.argv[1:] == ["packages"]:
        sys.stdout.write(",".join(PACKAGES) + "\n")
    elif sys.argv[1:] == ["warm-cache"]:
        # Resolve the connector jars into the Ivy cache and list them; later starts need no network.
        from conf.settings import load_settings

        resolve_connectors(load_settings())
    elif sys.argv[1:] == ["class-archive"]:
        from conf.settings import load_settings

        write_class_archive(load_settings())
    elif sys.argv[1:2] == ["class-workload"]:
        _class_workload(Path(sys.argv[2]))
    elif sys.argv[1:] == ["ivy-settings"]:
        sys.stdout.write(f"{IVY_SETTINGS}\n")
    elif sys.argv[1:] == ["log4j-config"]:
        sys.stdout.write(f"{LOG4J_CONFIG}\n")

    else:
        sys.stderr.write(
            "usage: python -m spark_jobs.session packages|ivy-settings|log4j-config|warm-cache|class-archive\n"
        )
        sys.exit(2)
