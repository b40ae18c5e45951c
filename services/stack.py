"""Earshot's local stack: a single-node Kafka broker (KRaft) and FerretDB, as plain processes.

``python -m services.stack up|status|down`` (wrapped by ``services/local-stack.sh``).

- ``up`` is idempotent: a healthy service is reused, a missing one is installed
  (broker jars with Maven, FerretDB with Go) and started on 127.0.0.1, and the
  command returns once both answer. It also creates the Kafka topics.
- ``status`` exits 0 only when both services are healthy.
- ``down`` stops only the processes that ``up`` started (their pid files).

When the settings point Kafka or MongoDB at another host (a cluster, Atlas),
that service is left alone: ``up`` only checks that it answers.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import sys
import time
import uuid
from pathlib import Path

from conf.errors import EarshotError
from conf.settings import REPO_ROOT, Settings, SettingsError, load_settings
from services.health import kafka_healthy, kafka_service, mongo_healthy, mongo_service
from services.process import (
    Service,
    _is_ours,
    _read_pid,
    _run_checked,
    _spawn,
    _wait_healthy,
)

log = logging.getLogger("earshot.stack")

SERVICES_DIR = REPO_ROOT / "services"


# ---------------------------------------------------------------- Kafka


def _kafka_libs(service: Service) -> Path:
    libs = service.home / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        log.info("resolving the Kafka broker's jars from Maven Central (once)")
        _run_checked(
            [
                "mvn",
                "-q",
                "-f",
                str(SERVICES_DIR / "kafka" / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={libs}",
            ],
            what="mvn dependency:copy-dependencies",
        )
    return libs


def _kafka_properties(service: Service, settings: Settings) -> Path:
    controller_port = service.port + 1
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{service.port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{service.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(service.home / "data"),
        "num.partitions": str(settings.kafka.partitions),
        # Topics are created on purpose (by `up` and by jobs), never by a typo.
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
    }
    path = service.home / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def _java(libs: Path, service: Service, *args: str) -> list[str]:
    return [
        "java",
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={SERVICES_DIR / 'kafka' / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={service.home / 'logs'}",
        "-cp",
        f"{libs}/*",
        *args,
    ]


def start_kafka(settings: Settings) -> str:
    service = kafka_service(settings)
    if not service.managed:
        return _external(service, kafka_healthy(settings))
    if kafka_healthy(settings):
        return f"kafka: reusing the broker at {service.host}:{service.port}"
    service.home.mkdir(parents=True, exist_ok=True)
    libs = _kafka_libs(service)
    props = _kafka_properties(service, settings)
    if not (service.home / "data" / "meta.properties").exists():
        # A base64 id may begin with "-"; "--cluster-id=ID" keeps the tool's parser from reading it as an option.
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        _run_checked(
            _java(libs, service, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props)),
            what="kafka-storage format",
        )
    proc = _spawn(service, _java(libs, service, "kafka.Kafka", str(props)))
    _wait_healthy(service, lambda: kafka_healthy(settings, timeout_s=1.0), proc)
    return f"kafka: started a KRaft broker at {service.host}:{service.port} (pid {proc.pid})"


def ensure_topics(settings: Settings) -> list[str]:
    """Create the listening-event topics if they are missing; return the names created."""
    from connectors.kafka_io import ensure_topic

    wanted = [settings.kafka.listens_topic, settings.kafka.dlq_topic]
    return [name for name in wanted if ensure_topic(settings, name)]


# ---------------------------------------------------------------- FerretDB


def _ferretdb_binary(settings: Settings) -> Path:
    binary = Path(settings.paths.state_root) / "bin" / "ferretdb"
    if not binary.exists():
        log.info("building FerretDB v1 with Go (once, about two minutes)")
        binary.parent.mkdir(parents=True, exist_ok=True)
        _run_checked(
            [str(SERVICES_DIR / "ferretdb" / "build.sh"), str(binary)],
            what="services/ferretdb/build.sh (go build)",
            cwd=SERVICES_DIR / "ferretdb",
        )
    return binary


def start_mongo(settings: Settings) -> str:
    service = mongo_service(settings)
    if not service.managed:
        return _external(service, mongo_healthy(settings))
    if mongo_healthy(settings):
        return f"mongodb: reusing the server at {service.host}:{service.port}"
    service.home.mkdir(parents=True, exist_ok=True)
    binary = _ferretdb_binary(settings)
    argv = [
        str(binary),
        f"-listen=127.0.0.1:{service.port}",
        f"-data={service.home / 'data'}",
        "-log-level=warn",
    ]
    proc = _spawn(service, argv)
    _wait_healthy(service, lambda: mongo_healthy(settings, timeout_s=0.5), proc)
    return f"mongodb: started FerretDB (SQLite) at mongodb://{service.host}:{service.port}/ (pid {proc.pid})"


def _external(service: Service, healthy: bool) -> str:
    state = "answers" if healthy else "does NOT answer"
    return f"{service.name}: external service at {service.host}:{service.port} {state}; left alone"


# ---------------------------------------------------------------- commands


def up(settings: Settings) -> list[str]:
    """Start (or reuse) both services and create the topics; return one line per service."""
    lines = [start_kafka(settings), start_mongo(settings)]
    if kafka_healthy(settings):
        created = ensure_topics(settings)
        if created:
            lines.append(f"kafka: created topics {', '.join(created)}")
    return lines


def status(settings: Settings) -> tuple[bool, list[str]]:
    lines, ok = [], True
    for service, healthy in (
        (kafka_service(settings), kafka_healthy(settings)),
        (mongo_service(settings), mongo_healthy(settings)),
    ):
        ok &= healthy
        pid = _read_pid(service)
        owner = f"pid {pid}, started by up" if pid else ("external" if not service.managed else "not ours")
        state = "healthy" if healthy else "DOWN"
        lines.append(f"{service.name}: {state} at {service.host}:{service.port} ({owner})")
    return ok, lines


def down(settings: Settings, *, timeout_s: float = 30.0) -> list[str]:
    """Stop the processes ``up`` started, politely first; leave everything else alone."""
    lines = []
    for service in (kafka_service(settings), mongo_service(settings)):
        pid = _read_pid(service)
        if pid is None:
            lines.append(f"{service.name}: nothing of ours running")
            service.pid_file.unlink(missing_ok=True)
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _is_ours(pid, service) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _is_ours(pid, service):
            os.kill(pid, signal.SIGKILL)
        service.pid_file.unlink(missing_ok=True)
        lines.append(f"{service.name}: stopped pid {pid}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="services/local-stack.sh", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "status", "down"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        if args.command == "up":
            lines, code = up(settings), 0
        elif args.command == "status":
            ok, lines = status(settings)
            code = 0 if ok else 1
        else:
            lines, code = down(settings), 0
    except (SettingsError, EarshotError) as exc:
        sys.stderr.write(f"local-stack: {exc}\n")
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
