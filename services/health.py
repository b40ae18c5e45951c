"""The stack's two services: which of them are ours to manage (on this host) and whether each answers."""

from __future__ import annotations

from pathlib import Path

from conf.settings import Settings
from connectors.services import any_reachable, kafka_hosts, mongo_hosts
from services.process import Service

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def kafka_service(settings: Settings) -> Service:
    host, port = kafka_hosts(settings.kafka.bootstrap_servers)[0]
    single = len(kafka_hosts(settings.kafka.bootstrap_servers)) == 1
    home = Path(settings.paths.state_root) / "kafka"
    return Service("kafka", home, host, port, managed=single and host in LOOPBACK)


def mongo_service(settings: Settings) -> Service:
    hosts = mongo_hosts(settings.mongo.uri)
    host, port = hosts[0]
    home = Path(settings.paths.state_root) / "ferretdb"
    managed = len(hosts) == 1 and host in LOOPBACK and port != 0
    return Service("mongodb", home, host, port, managed=managed)


def kafka_healthy(settings: Settings, *, timeout_s: float = 3.0) -> bool:
    """True when the broker answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConfigurationError, KafkaError

    if not any_reachable(kafka_hosts(settings.kafka.bootstrap_servers), timeout_s):
        return False
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            request_timeout_ms=int(timeout_s * 1000),
        )
    except KafkaConfigurationError:
        raise
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def mongo_healthy(settings: Settings, *, timeout_s: float = 2.0) -> bool:
    """True when the MongoDB-protocol server answers a ping."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    try:
        with MongoClient(settings.mongo.uri, serverSelectionTimeoutMS=int(timeout_s * 1000)) as c:
            c.admin.command("ping")
        return True
    except PyMongoError:
        return False
