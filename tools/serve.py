"""serve: the OpenSubsonic server for player apps (``api/``), on ``api.host``:``api.port`` (no Spark)."""

from __future__ import annotations

import argparse
import logging

from conf.settings import Settings
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
    host, port = args.host or settings.api.host, args.port or settings.api.port
    ctx = Context.open(settings)
    print(f"serve: OpenSubsonic server on http://{host}:{port}/rest (players: server http://{host}:{port}); "  # noqa: T201
          "Ctrl-C stops it", flush=True)  # fmt: skip
    uvicorn.run(build_app(ctx), host=host, port=port, log_level="warning", access_log=False)
    return 0
