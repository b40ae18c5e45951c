#!/usr/bin/env bash
# Sets up everything Earshot needs (idempotent) and runs the whole test suite:
# unit tests, and integration tests against a real Kafka broker, FerretDB and
# Spark, which start the local stack themselves when it is not running.
#   ./test.sh                 everything
#   ./test.sh -m unit         only the tests that need no server (any pytest args pass through)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
services/setup.sh --browser   # --browser: Debian's chromium for the dashboard's end-to-end test
.venv/bin/ruff check --quiet . || { echo "test.sh: ruff found problems (see above)" >&2; exit 1; }
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "test.sh: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit $rc
