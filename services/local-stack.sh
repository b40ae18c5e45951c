#!/usr/bin/env bash
# Start, check or stop Earshot's local Kafka broker and MongoDB-protocol server.
#   services/local-stack.sh up       start (or reuse) both, wait until they answer
#   services/local-stack.sh status   exit 0 only when both are healthy
#   services/local-stack.sh down     stop what `up` started, nothing else
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -x "$ROOT/.venv/bin/python" ]] || "$ROOT/services/setup.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m services.stack "$@"
