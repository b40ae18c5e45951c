"""serve: the OpenSubsonic server for player apps (``api/``), on ``api.host``:``api.port`` (no Spark)."""

from __future__ import annotations

import argparse
import logging

from conf.settings import Settings
from connectors import kafka_io
from connectors.services import require_mongo

log = logging.getLogger("earshot.api")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="default: api.host (127.0.0.1)")
    parser.add_argument("--port", type=int, help="default: api.port (4533)")


def main(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import build_app
    from api.context import Context

    require_mongo(settings)
    if not kafka_io.ensure_topic_once(settings, settings.kafka.listens_topic):
        log.warning("the listens topic %s on Kafka at %s is not ready (the broker does not answer, or the reason "
                    "above): browsing and playback work; plays, stars and skips fail (the player is told to retry) "
                    "until it is", settings.kafka.listens_topic, settings.kafka.bootstrap_servers)  # fmt: skip
    host, port = args.host or settings.api.host, args.port or settings.api.port
    ctx = Context.open(settings)
    print(f"serve: OpenSubsonic server on http://{host}:{port}/rest (players: server http://{host}:{port}); "  # noqa: T201
          "Ctrl-C stops it", flush=True)  # fmt: skip
    uvicorn.run(build_app(ctx), host=host, port=port, log_level="warning", access_log=False)
    return 0
