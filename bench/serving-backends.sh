#!/usr/bin/env bash
# The serving store's two FerretDB backends side by side: `python -m bench.serving`
# against the local stack's FerretDB on SQLite (ours, mongo.uri) and against the
# same FerretDB build on a scratch PostgreSQL (Debian's `postgresql` package),
# with the same upsert fast path on both (services/ferretdb/*upserts.patch).
#
#   bench/serving-backends.sh [bench.serving options]   # e.g. --in-flight 4
#
# Needs the local stack up and PostgreSQL's server binaries
# (/usr/lib/postgresql/*/bin/postgres). The PostgreSQL cluster runs with
# synchronous_commit=off (a commit does not wait for its WAL flush, as SQLite's
# synchronous=normal does not), in a scratch folder under .earshot that is
# removed at the end with the two servers this script started. Prints each
# run's table, then one table of both and one JSON line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
py="$repo/.venv/bin/python"
ferretdb="$repo/.earshot/bin/ferretdb"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x "$pg_bin/postgres" ]] || { echo "serving-backends: no PostgreSQL server; install Debian's postgresql package" >&2; exit 2; }
[[ -x "$ferretdb" ]] || { echo "serving-backends: no $ferretdb; run services/setup.sh" >&2; exit 2; }
services/local-stack.sh status >/dev/null || { echo "serving-backends: the local stack is down; run services/local-stack.sh up" >&2; exit 2; }

pg_port=${EARSHOT_BENCH_PG_PORT:-54329}
fdb_port=${EARSHOT_BENCH_FERRETDB_PORT:-27019}
scratch=$(mktemp -d "$repo/.earshot/bench-postgres.XXXXXX")
fdb_pid=""
# PostgreSQL refuses to run as root: as root, the cluster belongs to the package's postgres user.
as_owner() { if [[ $(id -u) -eq 0 ]]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
cleanup() {
  [[ -n "$fdb_pid" ]] && kill "$fdb_pid" 2>/dev/null && wait "$fdb_pid" 2>/dev/null
  as_owner "'$pg_bin/pg_ctl' -D '$scratch/data' -m fast stop" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
chmod 755 "$scratch"
mkdir "$scratch/data"
if [[ $(id -u) -eq 0 ]]; then chown postgres "$scratch/data"; fi
as_owner "'$pg_bin/initdb' -D '$scratch/data' -U postgres --auth=trust -E UTF8" >"$scratch/initdb.log" 2>&1 \
  || { cat "$scratch/initdb.log" >&2; exit 1; }
as_owner "'$pg_bin/pg_ctl' -D '$scratch/data' -l '$scratch/data/server.log' -w start -o \"-p $pg_port -k '$scratch/data' \
  -c listen_addresses=127.0.0.1 -c synchronous_commit=off -c shared_buffers=256MB\"" >/dev/null
as_owner "'$pg_bin/createdb' -h 127.0.0.1 -p $pg_port -U postgres ferretdb"
"$ferretdb" -listen "127.0.0.1:$fdb_port" -data "$scratch/unused" \
  -postgresql-url "postgres://postgres@127.0.0.1:$pg_port/ferretdb" >"$scratch/ferretdb.log" 2>&1 &
fdb_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$fdb_port") 2>/dev/null && break; sleep 0.2; done

echo "== FerretDB on SQLite (the local stack)"
sqlite=$("$py" -m bench.serving "$@" | tee /dev/stderr | tail -1)
echo "== FerretDB on PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}')"
postgres=$(MONGO_URI="mongodb://127.0.0.1:$fdb_port/" "$py" -m bench.serving "$@" | tee /dev/stderr | tail -1)
"$py" - "$sqlite" "$postgres" <<'EOF'
import json, sys
sqlite, postgres = (json.loads(a) for a in sys.argv[1:])
keys = [("columnar_rewrite_per_s", "rewrite (steady state)"), ("columnar_insert_per_s", "first write (insert)")]
print(f"\n{'columnar upserts/s':<28}{'SQLite (ours)':>14}{'PostgreSQL':>12}")
for key, label in keys:
    print(f"{label:<28}{sqlite[key]:>14,}{postgres[key]:>12,}")
print(json.dumps({"bench": "serving-backends", "listeners": sqlite["listeners"], "in_flight": sqlite["in_flight"],
                  "sqlite": {k: sqlite[k] for k, _ in keys}, "postgresql": {k: postgres[k] for k, _ in keys},
                  "rewrite_ratio_sqlite_over_postgresql":
                      round(sqlite["columnar_rewrite_per_s"] / postgres["columnar_rewrite_per_s"], 2)}))
EOF
