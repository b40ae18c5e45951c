from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conf.settings import QUICK_JIT, REPO_ROOT, SettingsError, load_settings

pytestmark = pytest.mark.unit


def test_base_settings_load_with_local_defaults():
    s = load_settings({})
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.kafka.listens_topic == "listens"
    assert s.mongo.uri == "mongodb://127.0.0.1:27017/"
    assert s.mongo.database == "earshot"
    assert s.paths.lake_root == str(REPO_ROOT / ".earshot" / "lake")
    assert s.lake_table("features") == str(REPO_ROOT / ".earshot" / "lake" / "features")


def test_settings_are_frozen():
    s = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.kafka.partitions = 9  # type: ignore[misc]


def test_well_known_environment_variables_override():
    s = load_settings(
        {
            "MONGO_URI": "mongodb://db.example:27017/",
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "EARSHOT_LAKE_ROOT": "s3a://bucket/lake",
            "SPARK_MASTER": "yarn",
        }
    )
    assert s.mongo.uri == "mongodb://db.example:27017/"
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert s.paths.lake_root == "s3a://bucket/lake"  # URIs are left as they are
    assert s.lake_table("events") == "s3a://bucket/lake/events"
    assert s.spark.master == "yarn"


def test_generic_override_is_coerced_to_the_declared_type():
    s = load_settings({"EARSHOT__INDEX__N_TREES": "20", "EARSHOT__STREAM__TRIGGER_SECONDS": "2"})
    assert s.index.n_trees == 20
    assert s.stream.trigger_seconds == 2.0


def test_wrong_type_names_the_key_and_what_is_expected():
    with pytest.raises(SettingsError, match=r"index\.n_trees: expected int, got 'many'"):
        load_settings({"EARSHOT__INDEX__N_TREES": "many"})


def test_unknown_key_in_environment_is_rejected():
    with pytest.raises(SettingsError, match=r"unknown key index\.n_tres"):
        load_settings({"EARSHOT__INDEX__N_TRES": "20"})


def test_unknown_key_in_overlay_names_it(tmp_path: Path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("kafka:\n  bootstrap: 'x:9092'\n")
    with pytest.raises(SettingsError, match=r"unknown key kafka\.bootstrap; known keys of kafka"):
        load_settings({"EARSHOT_CONF": str(overlay)})


def test_unknown_section_and_missing_overlay_are_clear(tmp_path: Path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("kafak:\n  partitions: 3\n")
    with pytest.raises(SettingsError, match=r"unknown section 'kafak'"):
        load_settings({"EARSHOT_CONF": str(overlay)})
    with pytest.raises(SettingsError, match=r"does not exist; check EARSHOT_CONF"):
        load_settings({"EARSHOT_CONF": str(tmp_path / "missing.yaml")})


def test_yaml_with_wrong_type_names_the_key(tmp_path: Path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("index:\n  shards: [1, 2]\n")
    with pytest.raises(SettingsError, match=r"index\.shards: expected int, got list"):
        load_settings({"EARSHOT_CONF": str(overlay)})


def test_bad_values_fail_fast():
    with pytest.raises(SettingsError, match=r"mongo\.uri must start with mongodb://"):
        load_settings({"MONGO_URI": "postgres://nope"})
    with pytest.raises(SettingsError, match=r"kafka\.partitions must be >= 1"):
        load_settings({"EARSHOT__KAFKA__PARTITIONS": "0"})


def test_cluster_example_is_a_valid_overlay():
    s = load_settings({"EARSHOT_CONF": str(REPO_ROOT / "conf" / "cluster.example.yaml")})
    assert s.spark.master == "yarn"
    assert s.paths.lake_root.startswith("s3a://")
    assert s.kafka.replication_factor == 3
    assert s.extract.sample_rate == 22050  # untouched keys keep the base value


def test_the_executors_python_setting_is_pack_none_or_an_archive():
    assert load_settings({}).spark.python_env == "pack"
    assert load_settings({"EARSHOT__SPARK__PYTHON_ENV": "hdfs:///envs/earshot.tar.gz"}).spark.python_env.endswith(".gz")
    with pytest.raises(SettingsError, match="spark.python_env must be pack, none, or an archive"):
        load_settings({"EARSHOT__SPARK__PYTHON_ENV": "/opt/venv"})


def test_a_driver_on_the_cluster_reads_the_settings_files_shipped_into_its_folder(tmp_path: Path, monkeypatch):
    """--files puts base.yaml and the overlay in the driver's working folder (YARN/Kubernetes cluster mode)."""
    (tmp_path / "base.yaml").write_text((REPO_ROOT / "conf" / "base.yaml").read_text())
    (tmp_path / "cluster.yaml").write_text("index:\n  shards: 7\n")
    monkeypatch.chdir(tmp_path)
    s = load_settings({"EARSHOT_CONF": "/gone/conf/cluster.yaml"}, base_file=Path("/gone/conf/base.yaml"))
    assert s.index.shards == 7


def test_jvm_options_reach_the_driver_after_its_log4j_setting_and_the_executors(tmp_path: Path):
    from spark_jobs.session import LOG4J_CONFIG, QUIET_CDS, class_archive, jvm_conf

    env = {"EARSHOT__PATHS__STATE_ROOT": str(tmp_path)}
    default = jvm_conf(load_settings(env))
    assert default == {"spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"}
    quick = jvm_conf(load_settings({**env, "EARSHOT__SPARK__JVM_OPTIONS": QUICK_JIT}))
    assert quick["spark.driver.extraJavaOptions"] == f"-Dlog4j2.configurationFile={LOG4J_CONFIG} {QUICK_JIT}"
    assert quick["spark.executor.extraJavaOptions"] == QUICK_JIT
    # Once setup has archived the driver's classes, the driver maps them in (quietly, should they not fit).
    archive = class_archive(load_settings(env))
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    driver = jvm_conf(load_settings(env))["spark.driver.extraJavaOptions"].split()
    assert f"-XX:SharedArchiveFile={archive}" in driver and set(QUIET_CDS) <= set(driver)


def test_a_local_master_takes_the_listed_connector_jars_after_sparks_own_and_skips_ivy(tmp_path: Path):
    from spark_jobs.session import PACKAGES, connector_conf, connector_environ, connector_jars, connector_list

    settings = load_settings({"EARSHOT__PATHS__STATE_ROOT": str(tmp_path)})
    ivy = {"spark.jars.packages": ",".join(PACKAGES)}
    # Nothing listed yet: every master resolves the packages with Ivy.
    assert connector_jars(settings) == [] and connector_environ(settings, {}) == {}
    assert ivy.items() <= connector_conf(settings, local=True).items()
    jars = [tmp_path / "ivy" / "jars" / n for n in ("a.jar", "b.jar")]
    jars[0].parent.mkdir(parents=True)
    for jar in jars:
        jar.write_bytes(b"")
    listing = connector_list(settings)
    listing.write_text("\n".join([",".join(PACKAGES), *map(str, jars)]) + "\n")
    assert connector_jars(settings) == [str(j) for j in jars]
    assert connector_conf(settings, local=True) == {}
    assert ivy.items() <= connector_conf(settings).items(), "a cluster still gets the packages"
    # After Spark's own jars (and any the environment already appends), so Spark's classes win as with Ivy.
    env = connector_environ(settings, {"SPARK_DIST_CLASSPATH": "/hadoop/*"})
    assert env == {"SPARK_DIST_CLASSPATH": f"/hadoop/*:{jars[0]}:{jars[1]}"}
    # A list made for other packages, or naming a jar that is gone, is not used.
    listing.write_text("\n".join(["io.delta:delta-spark_2.13:3.0.0", *map(str, jars)]) + "\n")
    assert connector_jars(settings) == []
    listing.write_text("\n".join([",".join(PACKAGES), *map(str, jars), str(tmp_path / "gone.jar")]) + "\n")
    assert connector_jars(settings) == []


def test_the_launcher_hands_spark_submit_the_connectors_each_way(tmp_path: Path, monkeypatch):
    from spark_jobs.main import launcher_env
    from spark_jobs.session import PACKAGES

    monkeypatch.setenv("EARSHOT__PATHS__STATE_ROOT", str(tmp_path))
    monkeypatch.delenv("SPARK_DIST_CLASSPATH", raising=False)
    values = dict(line.split("=", 1) for line in launcher_env().splitlines())
    assert ",".join(PACKAGES) in values["EARSHOT_CONNECTOR_CONFS"]
    assert ",".join(PACKAGES) in values["EARSHOT_LOCAL_CONNECTOR_CONFS"], "nothing listed: Ivy"
    assert values["EARSHOT_LOCAL_CLASSPATH"] == "''"
