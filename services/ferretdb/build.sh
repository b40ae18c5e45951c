#!/usr/bin/env bash
# Builds Earshot's FerretDB (services/ferretdb/main.go around FerretDB v1.24.2's
# embeddable package) into the path given, with one upstream defect fixed and
# the changes below:
#
#   FerretDB v1's SQLite backend creates the unique _id index on the expression
#   _ferretdb_sjson->"_id" but filters by _ferretdb_sjson->'$._id'. SQLite only
#   uses an expression index for the identical expression, so every update,
#   upsert and delete by _id scanned the whole collection: 8 upserts/s at 2,000
#   documents. The patched copy filters by the indexed expression (same result,
#   SEARCH ... USING INDEX instead of SCAN).
#
#   upserts.patch: an `update` command whose every statement replaces or inserts
#   one document by a plain _id filter (what pymongo's bulk ReplaceOne(upsert)
#   sends, the serving store's write) runs as one SQLite transaction of
#   UPDATE-else-INSERT, instead of a query and a transaction per statement:
#   about 700 upserts/s became several thousand here. Other commands take the
#   general path unchanged. postgresql-upserts.patch does the same for the
#   PostgreSQL backend (main.go -postgresql-url; the local stack runs SQLite).
#
#   lazy-sql-log.patch: every SQL statement built a debug logger with its
#   arguments (the whole document, quoted) even at log level warn; a quarter of
#   the CPU of an upsert. The patched copy builds it only when debug is on.
#
#   sjson-append.patch: storing a document (sjson.Marshal: its values and their
#   type schema as JSON) made a buffer and an encoding/json call per value and
#   per schema entry; a quarter of the CPU of an upsert in a profile of the
#   stream's writes. The patched Marshal appends the same bytes into one buffer
#   (4.3x faster on a serving document); its test, run here at every build,
#   compares it byte for byte with FerretDB's own Marshal (kept) on FerretDB's
#   test documents and 20,000 random ones.
#
#   prepared-upserts.patch: the upserts' UPDATE is prepared once per command
#   instead of once per document (SQLite's parser was 5% of an upsert's CPU).
#
#   sqlite-cgo.patch: SQLite compiled from C (github.com/mattn/go-sqlite3, by
#   cgo; build tags sqlite_dbstat for FerretDB's size statistics and
#   sqlite_stat4 for its planner) instead of modernc.org/sqlite's translation
#   of it to Go. SQLite was over half of an upsert's CPU, most of it parsing
#   the stored JSON to maintain the _id index (the old row's and the new
#   one's); compiled, it is under a fifth: rewrites 1.6-1.9x the upserts per
#   second here. The pool's _pragma=name(value) parameters become the
#   driver's _name=value, and a duplicate _id is recognised by the driver's
#   extended error code. Same file format: an existing data folder opens as it is.
#
#   nan-check.patch: FerretDB refuses float64 NaN values (its stored JSON has
#   none) by switching on the wire package's check, which decoded every
#   request's documents a second time only to look for them: a tenth of an
#   upsert's CPU. The patched build refuses NaN in the conversion every
#   request document goes through anyway (internal/bson), as an error reply
#   ("NaN is not supported") where the check closed the connection; a
#   malformed first section is answered as an error too, not a panic.
#
#   end-sessions.patch: pymongo sends `endSessions` when a client closes. FerretDB
#   keeps no server sessions and answered "no such command", and logged that
#   reply (two lines, ~600 bytes) at warn for every client closed: nearly every
#   line of the server's log. The patched build answers ok, as MongoDB does.
#
# The module is copied from Go's module cache into a build folder and patched
# there; nothing outside that folder and the output path is touched.
#   services/ferretdb/build.sh OUT_BINARY
set -euo pipefail
out=$(realpath -m "${1:?usage: build.sh OUT_BINARY}")  # absolute: the build runs in another folder
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/earshot-ferretdb-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

cd "$here"
go mod download github.com/FerretDB/FerretDB
src=$(go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)
cp -r "$src" "$work/ferretdb" && chmod -R u+w "$work/ferretdb"
meta="$work/ferretdb/internal/backends/sqlite/metadata/metadata.go"
grep -q "IDColumn = DefaultColumn + \"->'\$._id'\"" "$meta" \
  || { echo "build.sh: FerretDB's IDColumn is not the expected one; review the patch" >&2; exit 1; }
sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \`->\"_id\"\`|" "$meta"
for patch in upserts.patch postgresql-upserts.patch lazy-sql-log.patch sjson-append.patch prepared-upserts.patch \
    sqlite-cgo.patch nan-check.patch end-sessions.patch; do
  (cd "$work/ferretdb" && git apply -p1 "$here/$patch") \
    || { echo "build.sh: $patch does not apply to this FerretDB; review it" >&2; exit 1; }
done
touch "$work/ferretdb/.git"  # FerretDB's test helpers look for the root of a checkout
(cd "$work/ferretdb" && go test -count=1 -run 'TestAppendMatchesUpstream|TestDocument|TestArray' ./internal/handler/sjson/ >&2) \
  || { echo "build.sh: the patched sjson.Marshal does not write FerretDB's bytes; review sjson-append.patch" >&2; exit 1; }

mkdir "$work/main" && cp main.go go.mod go.sum "$work/main/"
cd "$work/main"
go mod edit -replace "github.com/FerretDB/FerretDB=$work/ferretdb"
mkdir -p "$(dirname "$out")"
CGO_ENABLED=1 go build -trimpath -tags sqlite_dbstat,sqlite_stat4 -o "$out.tmp" . && mv "$out.tmp" "$out"
