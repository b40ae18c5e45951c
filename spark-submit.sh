#!/usr/bin/env bash
# Earshot's launcher: ./spark-submit.sh [spark-submit options] <job> [job options]
#
# Runs a job of spark_jobs/ through the real spark-submit of the installed
# pyspark, with the Kafka and Delta connectors resolved once into a local Ivy
# cache (then offline). spark-submit's own options pass through, before or
# after the job name, so the same command runs on local[*], a standalone
# master, YARN or Kubernetes. ./spark-submit.sh --help lists the jobs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY="$ROOT/.venv/bin/python"

"$ROOT/services/setup.sh" --quiet
if [[ $# -eq 0 || "$1" == "-h" || "$1" == "--help" ]]; then
  exec "$PY" "$ROOT/spark_jobs/main.py" --help
fi
launcher_env=$("$PY" "$ROOT/spark_jobs/main.py" --launcher-env) || exit 2
eval "$launcher_env"

# spark-submit options that take a value; the rest of its flags take none.
valued=" --master --deploy-mode --conf --name --jars --packages --exclude-packages --repositories
 --py-files --files --archives --properties-file --driver-memory --driver-java-options
 --driver-library-path --driver-class-path --driver-cores --executor-memory --executor-cores
 --total-executor-cores --num-executors --queue --principal --keytab --proxy-user "
flags=" --verbose --supervise "
spark_opts=() job="" job_args=() master="$EARSHOT_MASTER"
while [[ $# -gt 0 ]]; do
  arg="$1"; opt="${arg%%=*}"
  if [[ "$valued" == *" $opt "* ]]; then
    if [[ "$arg" == *=* ]]; then value="${arg#*=}"; shift
    else [[ $# -ge 2 ]] || { echo "earshot: $arg needs a value" >&2; exit 2; }; value="$2"; shift 2; fi
    if [[ "$opt" == "--master" ]]; then master="$value"; else spark_opts+=("$opt" "$value"); fi
  elif [[ "$flags" == *" $arg "* ]]; then
    spark_opts+=("$arg"); shift
  elif [[ -z "$job" && "$arg" != -* ]]; then
    job="$arg"; shift
  else
    job_args+=("$arg"); shift
  fi
done
[[ -n "$job" ]] || { echo "earshot: no job named; see ./spark-submit.sh --help" >&2; exit 2; }
if [[ " $EARSHOT_JOBS " != *" $job "* ]]; then
  echo "earshot: unknown job '$job'; jobs: $EARSHOT_JOBS" >&2; exit 2
fi

export NUMBA_CACHE_DIR
mkdir -p "$NUMBA_CACHE_DIR"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"

# Orchestrating jobs (the demo) run in plain Python and call spark-submit per step.
if [[ " $EARSHOT_PLAIN_PYTHON_JOBS " == *" $job "* ]]; then
  exec "$PY" "$ROOT/spark_jobs/main.py" "$job" ${job_args[@]+"${job_args[@]}"}
fi

extra=()
confs() {  # --conf for each KEY=VALUE line of $1
  local kv
  while IFS= read -r kv; do
    if [[ -n "$kv" ]]; then extra+=(--conf "$kv"); fi
  done <<<"$1"
}
# spark.jvm_options (spark_jobs.session.jvm_conf): the driver's JVM gets them below, executors through their conf.
[[ -n "$EARSHOT_EXECUTOR_JAVA_OPTIONS" ]] && extra+=(--conf "spark.executor.extraJavaOptions=$EARSHOT_EXECUTOR_JAVA_OPTIONS")
if [[ "$master" == local* ]]; then
  # Local mode: the driver and its Python workers use the project's venv; the connectors' jars are on the
  # driver's class path once setup has listed them (else Ivy resolves them, offline, as the job starts).
  export PYSPARK_PYTHON="$PY" PYSPARK_DRIVER_PYTHON="$PY"
  extra+=(--driver-memory "$EARSHOT_DRIVER_MEMORY")
  confs "$EARSHOT_LOCAL_CONFS"
  confs "$EARSHOT_LOCAL_CONNECTOR_CONFS"
  if [[ -n "$EARSHOT_LOCAL_CLASSPATH" ]]; then export SPARK_DIST_CLASSPATH="$EARSHOT_LOCAL_CLASSPATH"; fi
else
  confs "$EARSHOT_CONNECTOR_CONFS"
  # A cluster: executors get the project's code, the settings and the packed
  # Python environment (tools/package.py; README, "Running on a cluster").
  # The driver (client mode) runs here, with the venv and its own Spark.
  export SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
  export PYSPARK_DRIVER_PYTHON="$PY"
  unset PYSPARK_PYTHON
  ship_file=$(mktemp)
  "$PY" "$ROOT/spark_jobs/main.py" package --launcher >"$ship_file" || exit 2
  mapfile -d '' ship <"$ship_file"
  rm -f "$ship_file"
  extra+=("${ship[@]}" --conf "spark.pyspark.driver.python=$PY")
  # The Python the driver's JVM starts by itself (the stream's stateful processor is first set up on
  # the driver, with the executors' interpreter, which need not have Earshot installed) finds the
  # project's code in the same zip the executors get: Spark puts the JVM's PYTHONPATH on its path.
  for i in "${!ship[@]}"; do
    [[ "${ship[$i]}" == --py-files ]] && export PYTHONPATH="${ship[$((i + 1))]}${PYTHONPATH:+:$PYTHONPATH}"
  done
  # The driver's JVM runs in the driver folder, where ./env is the venv: the Python it starts
  # itself (the stream's stateful processor) uses the executors' path, ./env/bin/python. Paths
  # given to spark-submit are made absolute first; the job's own process works from here again.
  for i in "${!spark_opts[@]}"; do
    case "${spark_opts[$i]}" in
      --files|--py-files|--archives|--jars|--properties-file|--keytab)
        IFS=, read -ra parts <<<"${spark_opts[$((i + 1))]}"
        for j in "${!parts[@]}"; do
          [[ "${parts[$j]}" == /* || "${parts[$j]}" == *://* ]] || parts[$j]="$PWD/${parts[$j]}"
        done
        spark_opts[$((i + 1))]=$(IFS=,; echo "${parts[*]}") ;;
    esac
  done
  export EARSHOT_CALLER_CWD="$PWD"
  cd "$EARSHOT_DRIVER_DIR"
fi

# Lines that ask nothing of the user are left out of the output unless spark-submit's --verbose is
# given (services/spark/quiet-output.regex): Ivy's resolution report (60 lines, every run, though it is
# resolved offline from .earshot/ivy; partly on stdout) and netlib's note that no native BLAS is
# installed (Spark uses its Java one). Ivy's failures (UNRESOLVED DEPENDENCIES and the exception)
# match none of these line shapes and still show.
if [[ " ${spark_opts[*]-} " != *" --verbose "* ]]; then
  # stderr becomes a pipe: progress bars find the terminal through EARSHOT_TTY (spark_jobs/progress.py).
  [[ -t 2 ]] && export EARSHOT_TTY=1
  quiet="$ROOT/services/spark/quiet-output.regex"
  exec 2> >(grep --line-buffered -v -E -f "$quiet" >&2)
  exec > >(grep --line-buffered -v -E -f "$quiet")
fi

# Not exec: SIGTERM or SIGHUP (systemd, a container runtime, kill) goes to the job's own Python
# process, a child of spark-submit's JVM, which stops its queries and exits; the JVM then ends.
# Sent to the JVM instead, it would die at once (status 143) and leave its Python child behind.
"$ROOT/.venv/bin/spark-submit" \
  --master "$master" \
  --driver-java-options "$EARSHOT_DRIVER_JAVA_OPTIONS" \
  ${extra[@]+"${extra[@]}"} ${spark_opts[@]+"${spark_opts[@]}"} \
  "$ROOT/spark_jobs/main.py" "$job" ${job_args[@]+"${job_args[@]}"} &
submit=$!
stop_job() {
  local driver
  driver=$(pgrep -P "$submit" -f "spark_jobs/main.py" || true)
  kill -TERM ${driver:-$submit} 2>/dev/null || true
}
trap stop_job TERM HUP INT  # background jobs of a script ignore SIGINT: Ctrl-C is forwarded too
while true; do
  rc=0
  wait "$submit" || rc=$?
  kill -0 "$submit" 2>/dev/null || exit "$rc"  # wait also returns when a trapped signal arrives
done
