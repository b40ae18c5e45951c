from __future__ import annotations

import pytest

from conf.settings import load_settings
from connectors.services import kafka_hosts, mongo_hosts, parse_host_port
from services.stack import kafka_service, mongo_service

pytestmark = pytest.mark.unit


def test_host_port_parsing():
    assert parse_host_port("127.0.0.1:9092", default_port=1) == ("127.0.0.1", 9092)
    assert parse_host_port("broker", default_port=9092) == ("broker", 9092)
    assert parse_host_port("[::1]:9093", default_port=1) == ("::1", 9093)


def test_mongo_uri_hosts_strip_credentials_and_options():
    assert mongo_hosts("mongodb://u:p@db1:27018,db2/earshot?replicaSet=rs") == [("db1", 27018), ("db2", 27017)]
    assert mongo_hosts("mongodb+srv://u:p@cluster0.example.net/") == [("cluster0.example.net", 0)]
    assert kafka_hosts("a:1, b:2") == [("a", 1), ("b", 2)]


def test_stack_manages_only_loopback_services():
    local = load_settings({})
    assert kafka_service(local).managed and mongo_service(local).managed
    remote = load_settings({"MONGO_URI": "mongodb://db.internal:27017/", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    assert not kafka_service(remote).managed
    assert not mongo_service(remote).managed


def test_wait_healthy_trusts_the_child_handle_not_its_command_line(tmp_path):
    """Regression: a fresh child's /proc cmdline may not name the stack folder yet (fork
    before exec); `up` took that for an early exit and left a live broker behind."""
    from services.process import Service, StackError, _spawn, _wait_healthy

    service = Service("probe", tmp_path, "127.0.0.1", 1, managed=True)
    calls = iter([False, False, True])
    alive = _spawn(service, ["sleep", "5"])  # its command line never names tmp_path
    try:
        _wait_healthy(service, lambda: next(calls), alive)
    finally:
        alive.kill()
        alive.wait()
    dead = _spawn(service, ["false"])
    dead.wait()
    with pytest.raises(StackError, match="probe exited during start"):
        _wait_healthy(service, lambda: False, dead)
