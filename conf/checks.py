"""The settings' range checks: what a type alone cannot say, each with the message that says what to fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conf.errors import SettingsError

if TYPE_CHECKING:
    from conf.settings import Settings

EMBEDDINGS = ("musicnn-msd", "none")
SPACES = ("auto", "features", "musicnn-msd")


def check_values(s: Settings) -> None:
    """Range checks that a type alone cannot express."""
    checks = [
        (
            s.spark.python_env in ("pack", "none") or s.spark.python_env.endswith((".tar.gz", ".tgz", ".tar", ".zip")),
            "spark.python_env must be pack, none, or an archive (.tar.gz, .tgz, .tar, .zip) path or URI",
        ),
        (s.kafka.partitions >= 1, "kafka.partitions must be >= 1"),
        (s.kafka.replication_factor >= 1, "kafka.replication_factor must be >= 1"),
        (bool(s.kafka.bootstrap_servers.strip()), "kafka.bootstrap_servers is empty"),
        (
            s.mongo.uri.startswith(("mongodb://", "mongodb+srv://")),
            "mongo.uri must start with mongodb:// or mongodb+srv:// (set MONGO_URI)",
        ),
        (s.mongo.timeout_ms > 0, "mongo.timeout_ms must be > 0"),
        (8000 <= s.extract.sample_rate <= 96000, "extract.sample_rate must be 8000..96000 Hz"),
        (s.extract.clip_seconds > 0, "extract.clip_seconds must be > 0"),
        (s.extract.batch_size >= 1, "extract.batch_size must be >= 1"),
        (s.extract.track_time_limit_s >= 0, "extract.track_time_limit_s must be >= 0 (0 turns the limit off)"),
        (s.extract.embedding in EMBEDDINGS, f"extract.embedding must be one of {', '.join(EMBEDDINGS)}"),
        (s.index.space in SPACES, f"index.space must be one of {', '.join(SPACES)}"),
        (s.index.n_trees >= 1, "index.n_trees must be >= 1"),
        (s.index.shards >= 0, "index.shards must be >= 0 (0: about one shard per 500 tracks, at most 256)"),
        (s.index.exact_tracks >= 0, "index.exact_tracks must be >= 0 (0: every shard searched by its trees)"),
        (s.index.probe >= 0, "index.probe must be >= 0 (0 probes every shard)"),
        (s.index.keep_versions >= 1, "index.keep_versions must be >= 1"),
        (s.index.pca_components >= 0, "index.pca_components must be >= 0 (0 turns PCA off)"),
        (s.stream.trigger_seconds > 0, "stream.trigger_seconds must be > 0"),
        (s.stream.recommendations >= 1, "stream.recommendations must be >= 1"),
        (s.stream.half_life_hours > 0, "stream.half_life_hours must be > 0"),
        (s.stream.archive_trigger_seconds > 0, "stream.archive_trigger_seconds must be > 0"),
        (s.stream.state_buckets >= 1, "stream.state_buckets must be >= 1"),
        (s.stream.partitions >= 0, "stream.partitions must be >= 0 (0: one per core Spark has)"),
        (s.stream.taste_cache_listeners >= 0, "stream.taste_cache_listeners must be >= 0 (0 switches the copy off)"),
        (
            s.stream.index_delivery in ("path", "spark"),
            "stream.index_delivery must be path (executors read paths.index_root) or spark (shipped by the driver)",
        ),
        (s.mongo.write_retry_seconds >= 0, "mongo.write_retry_seconds must be >= 0"),
        (s.stream.max_age_days > 0, "stream.max_age_days must be > 0"),
        (1 <= s.api.port <= 65535, "api.port must be 1..65535"),
        (bool(s.api.host.strip()), "api.host is empty (127.0.0.1 serves this machine only)"),
    ]
    for ok, message in checks:
        if not ok:
            raise SettingsError(message)
