"""Earshot's settings: one typed, frozen object loaded from conf/*.yaml plus the environment.

Read only at entry points and passed down; compute code never reads the
environment. The dataclasses below are the single definition of every key:
the YAML is checked against them (an unknown key or a wrong type fails at
start with a message naming the key), and the environment overrides are
derived from them too.

Sources, later wins:

1. ``conf/base.yaml`` (local defaults, shipped with the repo);
2. the overlay named by ``EARSHOT_CONF`` (for example a copy of
   ``conf/cluster.example.yaml``);
3. the well-known variables in :data:`ENV_ALIASES` (``MONGO_URI``,
   ``KAFKA_BOOTSTRAP_SERVERS``, ...);
4. ``EARSHOT__<SECTION>__<KEY>`` for any key, e.g. ``EARSHOT__INDEX__N_TREES=20``.

Why not a settings library (pydantic-settings): the generic part here is small (coercing a YAML or
environment value to a field's type, naming the key that fails), every error message names the key
and says what to write instead in this project's words, which a library's validation errors would
replace with its own, and the executors would need one more compiled dependency to read a frozen
dataclass. The checks across keys are in ``conf.checks``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conf.checks import EMBEDDINGS, SPACES, check_values  # noqa: F401 - the names settings users import
from conf.errors import SettingsError

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_FILE = REPO_ROOT / "conf" / "base.yaml"


# A spark.jvm_options value for short jobs: the JIT's quick tier only (the demo's batch steps and the tests).
QUICK_JIT = "-XX:TieredStopAtLevel=1"


@dataclass(frozen=True)
class SparkSettings:
    master: str
    shuffle_partitions: int
    driver_memory: str
    python_env: str  # executors' Python on a non-local master: pack | none | an archive path or URI
    jvm_options: str  # added to the driver's and the executors' JVM options ("" = the JVM's defaults)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    listens_topic: str
    dlq_topic: str
    partitions: int
    replication_factor: int


@dataclass(frozen=True)
class MongoSettings:
    uri: str
    database: str
    timeout_ms: int
    write_retry_seconds: float


@dataclass(frozen=True)
class PathSettings:
    state_root: str
    lake_root: str
    index_root: str
    checkpoint_root: str
    numba_cache_dir: str
    library_root: str
    models_dir: str  # pretrained weights (services/setup.sh downloads them)


@dataclass(frozen=True)
class ExtractSettings:
    sample_rate: int
    clip_seconds: float
    batch_size: int
    feature_version: str
    track_time_limit_s: float  # per track, in a child process; 0: no limit, no child
    embedding: str  # musicnn-msd: each track's pretrained embedding beside its features; none: features only


@dataclass(frozen=True)
class IndexSettings:
    n_trees: int
    search_k: int
    shards: int  # 0: index.build.auto_shards
    probe: int
    exact_tracks: int
    pca_components: int
    keep_versions: int
    seed: int
    space: str  # auto: musicnn-msd where the feature version has embeddings, else features


@dataclass(frozen=True)
class StreamSettings:
    trigger_seconds: float
    max_offsets_per_trigger: int
    recommendations: int
    half_life_hours: float
    max_future_seconds: int
    max_age_days: float
    archive_trigger_seconds: float
    state_buckets: int
    partitions: int  # the stateful step's tasks (the stream's spark.sql.shuffle.partitions); 0: Spark's cores
    taste_cache_listeners: (
        int  # per Python worker (spark_jobs.streaming.taste_cache); 0: every taste read from the state store
    )
    index_delivery: str  # path: executors read paths.index_root; spark: the driver ships versions with addArchive

    @property
    def max_age_s(self) -> float:
        """The oldest event the stream takes, in seconds."""
        return self.max_age_days * 86400.0


@dataclass(frozen=True)
class ApiSettings:
    host: str  # the OpenSubsonic server's address: loopback by default (put a TLS proxy in front to open it)
    port: int


@dataclass(frozen=True)
class Settings:
    spark: SparkSettings
    kafka: KafkaSettings
    mongo: MongoSettings
    paths: PathSettings
    extract: ExtractSettings
    index: IndexSettings
    stream: StreamSettings
    api: ApiSettings

    def lake_table(self, name: str) -> str:
        """Location of the Delta table ``name`` under the lake root."""
        return join_uri(self.paths.lake_root, name)

    def checkpoint(self, name: str) -> str:
        """Checkpoint location of the streaming query ``name``."""
        return join_uri(self.paths.checkpoint_root, name)


# Well-known variable -> (section, key). Production deployments set these.
ENV_ALIASES: dict[str, tuple[str, str]] = {
    "SPARK_MASTER": ("spark", "master"),
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "MONGO_URI": ("mongo", "uri"),
    "MONGO_DATABASE": ("mongo", "database"),
    "EARSHOT_LAKE_ROOT": ("paths", "lake_root"),
    "EARSHOT_INDEX_ROOT": ("paths", "index_root"),
    "EARSHOT_CHECKPOINT_ROOT": ("paths", "checkpoint_root"),
    "EARSHOT_LIBRARY_ROOT": ("paths", "library_root"),
    "EARSHOT_STATE_ROOT": ("paths", "state_root"),
    "NUMBA_CACHE_DIR": ("paths", "numba_cache_dir"),
}
_GENERIC_PREFIX = "EARSHOT__"
_SECTIONS: dict[str, type] = {f.name: typing.get_type_hints(Settings)[f.name] for f in dataclasses.fields(Settings)}


def join_uri(root: str, name: str) -> str:
    """Join a path or URI root and a child name with exactly one slash."""
    return root.rstrip("/") + "/" + name


def path_argument(value: str) -> str:
    """argparse ``type`` of a path option: a URI as it is, a local path made absolute against the working folder.

    Spark resolves a relative path against its JVM's folder, which is not always the caller's
    (the launcher starts a cluster driver's JVM in its own folder).
    """
    return value if is_uri(value) else os.path.abspath(os.path.expanduser(value))


def is_uri(value: str) -> bool:
    """True for ``scheme://...`` locations (s3a, hdfs, file), which are left as they are."""
    return "://" in value


def local_path(location: str) -> str | None:
    """A local file's path from a location as the catalogue, Spark or the settings give it: a plain path, or a
    ``file:`` URI in any of its forms (``file:/music``, Spark's, or ``file:///music``); None for another file
    system (HDFS, S3)."""
    if location.startswith("file:"):
        return "/" + location[len("file:") :].lstrip("/")
    return None if is_uri(location) else location


def _coerce(value: Any, expected: type, where: str) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (int, float) and isinstance(value, str):
        try:
            return expected(value)
        except ValueError:
            raise SettingsError(f"{where}: expected {expected.__name__}, got {value!r}") from None
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
        raise SettingsError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


def _build_section(name: str, cls: type, raw: Mapping[str, Any], origin: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(
            f"{origin}: unknown key {name}.{unknown[0]}; known keys of {name}: {', '.join(sorted(known))}"
        )
    missing = sorted(known - set(raw))
    if missing:
        raise SettingsError(f"{origin}: missing key {name}.{missing[0]}; add it to conf/base.yaml")
    values = {}
    for key, expected in hints.items():
        if isinstance(expected, types.GenericAlias):  # pragma: no cover - no such fields yet
            raise TypeError(f"unsupported settings type {expected}")
        values[key] = _coerce(raw[key], expected, f"{name}.{key}")
    return cls(**values)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SettingsError(f"settings file {path} does not exist; check EARSHOT_CONF")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of sections at the top level")
    for section, body in data.items():
        if section not in _SECTIONS:
            raise SettingsError(f"{path}: unknown section {section!r}; known sections: {', '.join(_SECTIONS)}")
        if not isinstance(body, dict):
            raise SettingsError(f"{path}: section {section!r} must be a mapping")
    return data


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = {section: dict(body) for section, body in base.items()}
    for section, body in overlay.items():
        merged.setdefault(section, {}).update(body)
    return merged


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for var, (section, key) in ENV_ALIASES.items():
        if environ.get(var):
            overrides.setdefault(section, {})[key] = environ[var]
    for var, value in environ.items():
        if not var.startswith(_GENERIC_PREFIX):
            continue
        parts = var[len(_GENERIC_PREFIX) :].lower().split("__")
        if len(parts) != 2 or parts[0] not in _SECTIONS:
            raise SettingsError(f"{var}: expected EARSHOT__<SECTION>__<KEY> with a section of {', '.join(_SECTIONS)}")
        overrides.setdefault(parts[0], {})[parts[1]] = value
    return overrides


def _resolve_paths(paths: PathSettings, root: Path) -> PathSettings:
    """Make local relative paths absolute against the checkout, so any working folder works."""
    resolved = {}
    for field in dataclasses.fields(paths):
        value = getattr(paths, field.name)
        resolved[field.name] = value if is_uri(value) or os.path.isabs(value) else str(root / value)
    return PathSettings(**resolved)


def load_settings(environ: Mapping[str, str] | None = None, *, base_file: Path = BASE_FILE) -> Settings:
    """Load and check the settings; raise :class:`SettingsError` naming the key at fault."""
    environ = os.environ if environ is None else environ
    raw = _read_yaml(_shipped(base_file))
    overlay = environ.get("EARSHOT_CONF")
    if overlay:
        overlay_path = Path(overlay)
        if not overlay_path.is_absolute():
            overlay_path = (Path.cwd() / overlay_path).resolve()
        overlay_path = _shipped(overlay_path)
        raw = _merge(raw, _read_yaml(overlay_path))
        origin = f"{base_file.name} + {overlay_path.name}"
    else:
        origin = base_file.name
    overrides = _env_overrides(environ)
    raw = _merge(raw, overrides)
    if overrides:
        origin += " + environment"

    sections = {}
    for name, cls in _SECTIONS.items():
        if name not in raw:
            raise SettingsError(f"{origin}: missing section {name!r}")
        sections[name] = _build_section(name, cls, raw[name], origin)
    settings = Settings(**sections)
    settings = dataclasses.replace(settings, paths=_resolve_paths(settings.paths, REPO_ROOT))
    check_values(settings)
    return settings


def _shipped(path: Path) -> Path:
    """``path``, or the copy spark-submit's ``--files`` put in the working folder (a driver run on the cluster)."""
    if path.is_file():
        return path
    here = Path.cwd() / path.name
    return here if here.is_file() else path
