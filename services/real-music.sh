#!/usr/bin/env bash
# Builds a real-music library from Debian's packages of freely licensed game
# soundtracks (see services/real_music.py): ./services/real-music.sh [DEST]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -x "$ROOT/.venv/bin/python" ]] || "$ROOT/services/setup.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m services.real_music "$@"
