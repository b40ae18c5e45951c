"""Fast reachability checks for Kafka and MongoDB, so a job fails at start with a clear line."""

from __future__ import annotations

import socket

from conf.errors import ServiceUnavailable
from conf.settings import Settings


def parse_host_port(address: str, *, default_port: int) -> tuple[str, int]:
    """Split ``host[:port]`` (IPv6 in brackets allowed) into host and port."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    return host, int(port) if port else default_port


def mongo_hosts(uri: str) -> list[tuple[str, int]]:
    """The host list of a ``mongodb://`` URI (``mongodb+srv`` names are returned with port 0)."""
    rest = uri.split("://", 1)[1]
    hostpart = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if uri.startswith("mongodb+srv://"):
        return [(hostpart, 0)]
    return [parse_host_port(h, default_port=27017) for h in hostpart.split(",") if h]


def kafka_hosts(bootstrap: str) -> list[tuple[str, int]]:
    return [parse_host_port(h, default_port=9092) for h in bootstrap.split(",") if h.strip()]


def any_reachable(hosts: list[tuple[str, int]], timeout: float) -> bool:
    for host, port in hosts:
        if port == 0:  # SRV record: the driver resolves it; nothing to probe here
            return True
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def require_kafka(settings: Settings, *, timeout: float = 2.0) -> None:
    """Raise :class:`ServiceUnavailable` unless a bootstrap server accepts connections."""
    if not any_reachable(kafka_hosts(settings.kafka.bootstrap_servers), timeout):
        raise ServiceUnavailable(
            f"cannot reach Kafka at {settings.kafka.bootstrap_servers} "
            "(kafka.bootstrap_servers / KAFKA_BOOTSTRAP_SERVERS); "
            "start the local one with: services/local-stack.sh up"
        )


def require_mongo(settings: Settings) -> None:
    """Raise :class:`ServiceUnavailable` unless the MongoDB server answers a ping."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    hosts = mongo_hosts(settings.mongo.uri)
    reason = ""
    if any_reachable(hosts, settings.mongo.timeout_ms / 1000):
        try:
            with MongoClient(settings.mongo.uri, serverSelectionTimeoutMS=settings.mongo.timeout_ms) as c:
                c.admin.command("ping")
            return
        except PyMongoError as exc:
            reason = f" ({exc.__class__.__name__})"
    raise ServiceUnavailable(
        f"cannot reach MongoDB at {', '.join(f'{h}:{p}' for h, p in hosts)}{reason} "
        "(mongo.uri / MONGO_URI); start the local one with: services/local-stack.sh up"
    )
