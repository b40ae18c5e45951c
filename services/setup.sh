#!/usr/bin/env bash
# Installs everything Earshot needs on a fresh machine, from the project's own
# files; each step is skipped when its result is already there.
#   .venv/                      Python 3.11 with pyproject.toml's pins (pip)
#   .earshot/kafka/libs/        the Kafka broker's jars (Maven Central, via mvn)
#   .earshot/bin/ferretdb       the MongoDB-protocol server (Go module build)
#   .earshot/ivy/               Spark's Kafka and Delta connector jars (Ivy, via Spark)
#   .earshot/spark/             Hadoop's local file system through java.nio (javac, from services/spark/localfs),
#                               and the class archive of Spark's driver JVM (a dynamic CDS archive)
#   .earshot/numba-cache/       librosa's and the index's numba kernels, compiled once
#   .earshot/models/            musicnn's pretrained weights: its wheel from PyPI, read in place
#   Debian chromium             only with --browser (dashboard end-to-end tests)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
STATE="${EARSHOT_STATE_ROOT:-$ROOT/.earshot}"
PY="$ROOT/.venv/bin/python"
say() { printf 'setup: %s\n' "$*" >&2; }
# One line per step: what it does, then how long it took (or that its result is already there).
started=$SECONDS
# Steps run side by side (below), so each says when it starts and, on a line of its own, when it is done.
begin() { step_t0=$SECONDS; step_what=$*; printf 'setup: %s ...\n' "$*" >&2; }
done_() { printf 'setup: %s: done in %d s\n' "${step_what%% (*}" $((SECONDS - step_t0)) >&2; }
browser=0 quiet=0
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;  # also Debian's chromium, for the dashboard's end-to-end tests
    --quiet) quiet=1 ;;      # only the steps that do something speak (the launcher runs setup before every job)
    *) say "unknown option $arg (options: --browser, --quiet)"; exit 2 ;;
  esac
done
have() { [[ $quiet == 1 ]] || say "$* (already there)"; }
# A step's own output (pip's build warnings, Ivy's report, Maven's colours) goes to a log under $STATE,
# shown only when the step fails.
quietly() {
  local name=$1; shift
  mkdir -p "$STATE"
  "$@" >"$STATE/setup-$name.log" 2>&1 && return 0
  cat "$STATE/setup-$name.log" >&2
  say "$name failed (log above: $STATE/setup-$name.log)"; exit 1
}

need() { command -v "$1" >/dev/null 2>&1 || { say "missing '$1': $2"; exit 1; }; }
need python3.11 "install Python 3.11" 2>/dev/null || need python3 "install Python 3.11"
need java "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)"
need mvn "install Maven (apt-get install maven)"
need go "install Go 1.22 or newer"
need cc "install a C compiler (apt-get install gcc): annoy and FerretDB's SQLite are built from C"

# 1. Python environment, reinstalled when pyproject.toml changes. Resolving Spark's connectors (4) needs only
#    pyspark and PyYAML (spark_jobs.session and conf.settings), so those two go in first, at pyproject.toml's
#    pins, and Ivy's downloads run while pip installs the rest.
python_env() {
  stamp="$ROOT/.venv/.earshot-installed"
  want=$(sha256sum pyproject.toml | cut -c1-16)
  if [[ ! -x "$PY" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    begin "installing the Python environment into .venv (pip)"
    pybin=$(command -v python3.11 || command -v python3)
    [[ -x "$PY" ]] || "$pybin" -m venv "$ROOT/.venv"
    quietly pip "$PY" -m pip install -q --upgrade pip
    quietly pip "$PY" -m pip install -q $(grep -oE '"(pyspark|pyyaml)==[^"]+"' pyproject.toml | tr -d '"')
    ( spark_connectors ) &
    connectors=$!
    quietly pip "$PY" -m pip install -q -e '.[dev]'
    echo "$want" > "$stamp"
    done_
    wait "$connectors" || exit 1
  else
    have "Python environment in .venv"
    spark_connectors
  fi
}

# 2. Kafka broker jars.
kafka_jars() {
  if ! compgen -G "$STATE/kafka/libs/kafka_2.13-*.jar" >/dev/null; then
    begin "resolving the Kafka broker's jars (mvn)"
    quietly mvn mvn -q -B -f services/kafka/pom.xml dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$STATE/kafka/libs"
    done_
  else
    have "Kafka broker's jars"
  fi
}

# 3. FerretDB, rebuilt when its sources (main.go, go.mod, the patching build script and its patch) change.
ferretdb() {
  fstamp="$STATE/bin/ferretdb.built-from"
  fwant=$(cat services/ferretdb/main.go services/ferretdb/go.mod services/ferretdb/build.sh services/ferretdb/*.patch | sha256sum | cut -c1-16)
  if [[ ! -x "$STATE/bin/ferretdb" || "$(cat "$fstamp" 2>/dev/null)" != "$fwant" ]]; then
    begin "building FerretDB v1.24.2 (go build, about two minutes once)"
    quietly go services/ferretdb/build.sh "$STATE/bin/ferretdb"
    echo "$fwant" > "$fstamp"
    done_
  else
    have "FerretDB"
  fi
}

# 4. Spark connectors: one session start resolves them into the Ivy cache and lists their jars for local
#    masters (spark_jobs.session.resolve_connectors), again when the packages in spark_jobs/session.py change.
spark_connectors() {
  clist="$STATE/ivy/earshot-jars.txt"  # spark_jobs.session.connector_list
  cstamp="$clist.built-from"
  cwant=$(grep -E '^(SPARK_VERSION|KAFKA_PACKAGE|DELTA_PACKAGE) = ' spark_jobs/session.py | sha256sum | cut -c1-16)
  if [[ ! -f "$cstamp" || "$(cat "$cstamp")" != "$cwant" ]]; then
    begin "resolving the Spark Kafka and Delta connectors (Ivy, once)"
    quietly ivy "$PY" -m spark_jobs.session warm-cache
    echo "$cwant" > "$cstamp"
    done_
  else
    have "Spark's Kafka and Delta connectors"
  fi
}

# 4b. Hadoop's local file system through java.nio (services/spark/localfs; spark_jobs/session.py says why),
#     rebuilt when its source changes. Without a JDK's javac the jobs use Hadoop's own, only slower.
local_fs() {
  ljar="$STATE/spark/earshot-localfs.jar"  # spark_jobs.session.localfs_jar
  lstamp="$ljar.built-from"
  lwant=$(cat services/spark/localfs/earshot/hadoop/*.java | sha256sum | cut -c1-16)
  if [[ ! -f "$ljar" || "$(cat "$lstamp" 2>/dev/null)" != "$lwant" ]]; then
    if command -v javac >/dev/null 2>&1; then
      begin "compiling the local file system for Spark (javac)"
      classes=$(mktemp -d)
      hadoop_api=$(compgen -G "$ROOT/.venv/lib/python3*/site-packages/pyspark/jars/hadoop-client-api-*.jar" | head -1)
      mkdir -p "$(dirname "$ljar")"
      quietly javac javac --release 17 -nowarn -cp "$hadoop_api" -d "$classes" services/spark/localfs/earshot/hadoop/*.java
      quietly jar jar cf "$ljar" -C "$classes" earshot
      rm -rf "$classes"
      echo "$lwant" > "$lstamp"
      done_
    else
      say "no javac (a JDK): Spark's local file writes use Hadoop's own file system, which starts a process per file"
    fi
  else
    have "the local file system for Spark"
  fi
}

# 4c. The Spark driver's class archive (spark_jobs/session.py, jvm_conf, says why), made again when the JVM,
#     Spark's jars, the connectors or the local file system change. Without it jobs start as before, only slower.
class_archive() {
  archive="$STATE/spark/driver-classes.jsa"  # spark_jobs.session.class_archive
  astamp="$archive.built-from"
  awant=$( { readlink -f "$(command -v java)"; ls "$ROOT"/.venv/lib/python3*/site-packages/pyspark/jars "$STATE/ivy/jars"
             cat "$STATE/spark/earshot-localfs.jar.built-from" "$STATE/ivy/earshot-jars.txt" 2>/dev/null || true
           } | sha256sum | cut -c1-16)
  if [[ ! -f "$archive" || "$(cat "$astamp" 2>/dev/null)" != "$awant" ]]; then
    begin "archiving the classes of Spark's driver (a small job of each kind, once, about a minute)"
    if "$PY" -m spark_jobs.session class-archive >"$STATE/setup-classes.log" 2>&1; then
      echo "$awant" > "$astamp"
      done_
    else
      rm -f "$archive"
      say "could not archive Spark's classes (log: $STATE/setup-classes.log); jobs start without the archive"
    fi
  else
    have "the class archive of Spark's driver"
  fi
}

# The Spark side of the second group, in order: the archive needs the connectors (step 1 resolved them)
# and the local file system.
spark_side() {
  local_fs
  class_archive
}

# 5. The numba kernels, compiled once by one process into the kept cache: librosa's (the extraction's), then
#    the index's batched search (the stream's first batch would otherwise compile them, ~4 s on an idle
#    machine). numba recompiles a kernel whose source changed; these checks only look for a first compile.
numba_kernels() {
  numba_dir="$STATE/numba-cache"
  if [[ ! -f "$numba_dir/.earshot-numba.ready" ]]; then
    begin "compiling librosa's numba kernels into $numba_dir (once, about 30 s)"
    quietly numba env NUMBA_CACHE_DIR="$numba_dir" "$PY" -m udfs.numba_cache "$numba_dir"
    done_
  else
    have "librosa's compiled numba kernels"
  fi
  if ! compgen -G "$numba_dir/index_*/kernels.score_pairs-*.nbi" >/dev/null; then
    begin "compiling the index's search kernels into $numba_dir (once, a few seconds)"
    quietly index-kernels env NUMBA_CACHE_DIR="$numba_dir" "$PY" -c "from index import kernels; kernels.ready()"
    done_
  else
    have "the index's compiled search kernels"
  fi
}

# 6. musicnn's pretrained weights (udfs/musicnn.py reads the checkpoint inside the wheel; nothing is
#    installed, and TensorFlow is not needed). Checked against the wheel's published sha256.
musicnn_weights() {
  wheel="$STATE/models/musicnn-0.1.0-py3-none-any.whl"
  wheel_sha=f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa
  if [[ "$(sha256sum "$wheel" 2>/dev/null | cut -c1-64)" != "$wheel_sha" ]]; then
    begin "downloading musicnn's pretrained weights (a 29 MB wheel from PyPI, once)"
    rm -f "$wheel"
    quietly musicnn "$PY" -m pip download -q --no-deps --only-binary=:all: musicnn==0.1.0 -d "$STATE/models"
    [[ "$(sha256sum "$wheel" | cut -c1-64)" == "$wheel_sha" ]] || { say "musicnn's wheel has an unexpected sha256"; exit 1; }
    done_
  else
    have "musicnn's pretrained weights"
  fi
}

# Steps that do not need each other run side by side: pip (and Ivy once pyspark is in), Maven and Go; then
# javac and the class archive (one after the other), numba and the weights download, which need the
# Python environment.
# Any step that fails stops setup after its group.
side_by_side() {
  local f pid rc=0 pids=()
  for f in "$@"; do
    ( "$f" ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
  done
  [[ $rc == 0 ]] || exit 1
}
side_by_side python_env kafka_jars ferretdb
side_by_side spark_side numba_kernels musicnn_weights

# 7. A browser for the dashboard's end-to-end tests.
if [[ $browser == 1 ]] && ! command -v chromium >/dev/null; then
  begin "installing Debian's chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
  done_
fi
[[ $quiet == 1 ]] || say "ready in $((SECONDS - started)) s"
