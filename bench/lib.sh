# shellcheck shell=bash
# bench/lib.sh: what the benchmark scripts in bench/ share. Each script
# sources it right after `set -euo pipefail`:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It changes to the repository root, sources scripts/goenv and defines:
#
#   ROOT VENV REQS BENCH_FILE      paths
#   WORK SERVER_PID LOAD_PID       the throwaway dir, the server and the load
#                                  generator running now (empty when none)
#   bench_require_posint/whole/names   setting checks (exit 2)
#   bench_start_work PREFIX        make WORK and install the exit traps
#   bench_wait_load                wait for the load generator in LOAD_PID
#   stop_server                    stop the server in SERVER_PID
#   bench_pin/bench_pip_pins       the pinned peers in bench/.venv
#   bench_free_port, bench_wait_http, bench_wharf_start, bench_wharf_mlflow, bench_wharf_token,
#   bench_wharf_cli_env
#   bench_jget                     a field of a JSON line
#   step, pipeline_header, chain_pipeline, fanout_pipeline
#                                  pipelines of no-op steps, as YAML
#   bench_loadavg, bench_machine, bench_wharf_rev, bench_sqlite_version
#   bench_stop_if_no_write, bench_notes, bench_write_section
#
# What runs at exit: the load generator and the server are stopped, each
# function named in BENCH_EXIT_HOOKS is called (scripts/pg's pg_stop, say),
# and WORK is removed.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT" || exit

# shellcheck source=scripts/goenv
source "$ROOT/scripts/goenv"

# shellcheck disable=SC2034 # used by the scripts that source this file
{
  VENV=$ROOT/bench/.venv
  REQS=$ROOT/bench/requirements-bench.txt
  BENCH_FILE=$ROOT/BENCHMARKS.md
}
WORK=""
SERVER_PID=""
LOAD_PID=""
BENCH_EXIT_HOOKS=()

# ---- settings ------------------------------------------------------------

# bench_require_posint NAME VALUE: exit 2 unless VALUE is an integer > 0.
bench_require_posint() {
  [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || { echo "$1 must be a positive integer" >&2; exit 2; }
}

# bench_require_whole NAME VALUE: exit 2 unless VALUE is a whole number of
# seconds.
bench_require_whole() {
  [[ $2 =~ ^[0-9]+$ ]] || { echo "$1 must be a whole number of seconds" >&2; exit 2; }
}

# bench_require_names SETTING KIND "KNOWN..." GIVEN...: exit 2 unless each
# GIVEN is one of the space-separated KNOWN names.
bench_require_names() {
  local setting=$1 kind=$2 known=$3 n
  shift 3
  for n in "$@"; do
    [[ " $known " == *" $n "* ]] || { echo "$setting: unknown $kind '$n'" >&2; exit 2; }
  done
}

# ---- processes and clean-up ----------------------------------------------

# stop_server: every server runs in a session of its own (setsid), so its
# whole process tree (worker processes included) is one process group:
# SIGTERM to the group lets it shut down cleanly, SIGKILL goes to whatever
# is left after a grace period.
stop_server() {
  local pid=$SERVER_PID
  SERVER_PID=""
  [[ -n $pid ]] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local i
  for (( i = 0; i < 100; i++ )); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

_bench_cleanup() {
  local rc=$? hook
  trap - EXIT
  if [[ -n $LOAD_PID ]]; then
    kill -TERM "$LOAD_PID" 2>/dev/null || true
    wait "$LOAD_PID" 2>/dev/null || true
  fi
  stop_server
  for hook in "${BENCH_EXIT_HOOKS[@]}"; do "$hook" || true; done
  [[ -n $WORK ]] && rm -rf -- "$WORK"
  exit "$rc"
}

# bench_start_work PREFIX: install the exit traps and make the throwaway
# dir WORK (under TMPDIR, named PREFIX.XXXXXX).
bench_start_work() {
  trap _bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
}

# bench_wait_load: wait for the load generator started in the background
# with its pid in LOAD_PID, and return its exit status. Run in the
# background and waited for, a load generator lets a signal reach the trap
# at once instead of after a measurement that may run for minutes.
bench_wait_load() {
  local rc=0
  wait "$LOAD_PID" || rc=$?
  LOAD_PID=""
  return "$rc"
}

# ---- the peers in bench/.venv --------------------------------------------

# bench_pin NAME: the version bench/requirements-bench.txt pins NAME to.
bench_pin() { sed -n "s/^$1==\([^ ]*\).*/\1/p" "$REQS"; }

# bench_installed NAME: the version of distribution NAME in bench/.venv.
bench_installed() {
  "$VENV/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || true
}

# bench_pip_pins NAME...: install the pinned version of each NAME that
# bench/.venv lacks (only those lines, not the whole file); fail if one is
# still missing afterwards. Every NAME must have a pin.
bench_pip_pins() {
  local n
  local -a want=()
  for n in "$@"; do
    [[ -x $VENV/bin/python && $(bench_installed "$n") == "$(bench_pin "$n")" ]] || want+=("$n==$(bench_pin "$n")")
  done
  (( ${#want[@]} > 0 )) || return 0
  echo "==> installing ${want[*]} into bench/.venv"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${want[@]}" ||
    echo "pip could not install ${want[*]}" >&2
  for n in "$@"; do
    [[ $(bench_installed "$n") == "$(bench_pin "$n")" ]] || return 1
  done
}

# ---- timing one process ----------------------------------------------------

# bench_timed OUT ERR CMD...: run CMD under /usr/bin/time -v, in the
# background (so a signal reaches the trap at once) and in a session of
# its own whose process group is in RUN_PGID while it runs (a script
# stopping early kills it: see kill_run in training.sh), with stdout to
# OUT and stderr to ERR. Sets ELAPSED (seconds, process start to exit, on
# this shell's clock) and RSS_KB (its peak resident set size); returns
# CMD's exit status.
bench_timed() {
  local out=$1 err=$2 t0 t1 rc=0
  shift 2
  t0=${EPOCHREALTIME/,/.}
  setsid /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$out" 2>"$err" &
  LOAD_PID=$! RUN_PGID=$!
  bench_wait_load || rc=$?
  t1=${EPOCHREALTIME/,/.}
  RUN_PGID=""
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }')
  RSS_KB=$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
  return "$rc"
}

# ---- servers -------------------------------------------------------------

# bench_free_port: a port nothing listens on now (for the peers; Wharf
# binds port 0 and says which port it got).
bench_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_wait_http NAME URL LOG: poll URL until it answers, or fail with the
# log's tail when the server in SERVER_PID exits or 120 s pass.
bench_wait_http() {
  local name=$1 url=$2 log=$3 i
  for (( i = 0; i < 1200; i++ )); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 40 "$log" >&2
      echo "$name exited during start-up" >&2
      return 1
    fi
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  tail -n 40 "$log" >&2
  echo "$name not ready after 120 s" >&2
  return 1
}

# json_str KEY: the string value of "KEY" in the JSON on stdin (a flat
# file such as owner-credentials.json).
json_str() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p"; }

# bench_wharf_start NAME DIR [SERVER-ARGS...]: start $WORK/bin/wharf server
# on a fresh data dir DIR/data, a port the kernel picks (port 0: the server
# writes the URL it bound into its credential file, so no port can be
# raced for), log DIR/server.log; wait until /readyz answers. Sets
# SERVER_PID, WHARF_SERVER_URL and WHARF_CREDS (the credential file).
bench_wharf_start() {
  local name=$1 dir=$2 url="" i
  shift 2
  mkdir -p "$dir"
  setsid "$WORK/bin/wharf" server --data-dir "$dir/data" --addr 127.0.0.1:0 --log-level warn "$@" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  WHARF_CREDS=$dir/data/owner-credentials.json
  for (( i = 0; i < 300; i++ )); do
    [[ -s $WHARF_CREDS ]] && url=$(json_str serverUrl <"$WHARF_CREDS")
    [[ -n $url ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $url ]] || { tail -n 40 "$dir/server.log" >&2; echo "$name wrote no serverUrl" >&2; return 1; }
  bench_wait_http "$name" "$url/readyz" "$dir/server.log" || return 1
  WHARF_SERVER_URL=$url
}

# bench_wharf_mlflow NAME DIR [server args...]: a fresh Wharf server
# (bench_wharf_start) with workspace "bench" made by its owner, for the
# MLflow benchmarks; sets TOKEN and BASE_URL, the workspace's MLflow root
# (what /api/2.0/mlflow is appended to).
bench_wharf_mlflow() {
  bench_wharf_start "$@" || return 1
  bench_wharf_token || return 1
  curl -fsS --max-time 10 -o /dev/null -X PUT -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data '{}' "$WHARF_SERVER_URL/api/v1/workspaces/bench"
  BASE_URL=$WHARF_SERVER_URL/mlflow/v1.0/workspaces/bench
}

# bench_wharf_token: an access token for the owner of the server that
# bench_wharf_start started, from its token endpoint; sets TOKEN.
bench_wharf_token() {
  local id secret answer
  id=$(json_str clientId <"$WHARF_CREDS")
  secret=$(json_str clientSecret <"$WHARF_CREDS")
  answer=$(curl -fsS --max-time 10 -X POST "$WHARF_SERVER_URL/oauth2/v2.0/token" \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode "client_id=$id" --data-urlencode "client_secret=$secret")
  TOKEN=$(json_str access_token <<<"$answer")
  [[ -n $TOKEN ]] || { echo "no access_token from $WHARF_SERVER_URL's token endpoint" >&2; return 1; }
}

# bench_wharf_cli_env DIR: point the wharf CLI at the server that
# bench_wharf_start started, as its owner, with its config under DIR.
bench_wharf_cli_env() {
  mkdir -p "$1"
  WHARF_URL=$WHARF_SERVER_URL
  WHARF_CREDENTIALS=$(cat "$WHARF_CREDS")
  WHARF_CONFIG_DIR=$1
  export WHARF_URL WHARF_CREDENTIALS WHARF_CONFIG_DIR
}

# bench_jget LINE KEY: a top-level field of a load generator's JSON line
# (booleans as true/false).
bench_jget() {
  python3 -c 'import json, sys
v = json.loads(sys.argv[1]).get(sys.argv[2], "")
print(str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"
}

# ---- pipelines of no-op steps ----------------------------------------------

# step NAME [UPSTREAM...]: one no-op step of a Wharf pipeline; each upstream's
# output is one input.
step() {
  local name=$1 i=0 up
  shift
  printf '  %s:\n    command: "true"\n    environment:\n      image: python:3.11\n' "$name"
  if (( $# > 0 )); then
    printf '    inputs:\n'
    for up in "$@"; do
      # shellcheck disable=SC2016 # ${{...}} is Wharf's, not the shell's
      printf '      in%04d: ${{parent.jobs.%s.outputs.out}}\n' "$i" "$up"
      i=$(( i + 1 ))
    done
  fi
  printf '    outputs:\n      out:\n'
}

# pipeline_header FORCE [COMPUTE]: the fresh and the cached YAML differ
# only in this value, on the same line, so each step's definition is the
# same in both. COMPUTE is the default compute (default cpu-cluster).
pipeline_header() {
  printf 'type: pipeline\nsettings:\n  default_compute: azureml:%s\n  force_rerun: %s\njobs:\n' "${2:-cpu-cluster}" "$1"
}

# fanout_pipeline FORCE WIDTH [COMPUTE]: start, WIDTH branches, join.
fanout_pipeline() {
  local i
  local -a branches=()
  for (( i = 0; i < $2; i++ )); do branches+=("$(printf 'b%04d' "$i")"); done
  pipeline_header "$1" "${3:-}"
  step start
  for i in "${branches[@]}"; do step "$i" start; done
  step join "${branches[@]}"
}

# chain_pipeline FORCE LENGTH [COMPUTE]: LENGTH steps, each reading the
# output of the one before.
chain_pipeline() {
  local i
  pipeline_header "$1" "${3:-}"
  step s1
  for (( i = 2; i <= $2; i++ )); do step "s$i" "s$(( i - 1 ))"; done
}

# ---- the section of BENCHMARKS.md ----------------------------------------

# bench_loadavg: the 1, 5 and 15 minute load averages.
bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# bench_machine: CPUs, CPU model, memory and kernel, for the Machine line.
bench_machine() {
  local mem_gib cpu_model
  mem_gib=$(free -g | awk '/^Mem:/ { print $2 }')
  cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  [[ -n $cpu_model ]] || cpu_model=$(uname -m)
  echo "$(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM (\`free -g\` total), Linux $(uname -r)"
}

# bench_wharf_rev: the commit Wharf was built from, marked when files
# outside bench/ and BENCHMARKS.md differ from it.
bench_wharf_rev() {
  local rev
  rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  [[ -n $(git status --porcelain -- . ':!bench' ':!BENCHMARKS.md' 2>/dev/null) ]] && rev+=" + uncommitted changes"
  echo "$rev"
}

# bench_sqlite_version: the modernc.org/sqlite module Wharf is built with.
bench_sqlite_version() { go list -m -f '{{.Version}}' modernc.org/sqlite 2>/dev/null || echo unknown; }

# bench_stop_if_no_write: with BENCH_NO_WRITE=1, say so and exit 0.
bench_stop_if_no_write() {
  if [[ ${BENCH_NO_WRITE:-} == 1 ]]; then
    echo "BENCH_NO_WRITE=1: BENCHMARKS.md left alone"
    exit 0
  fi
}

# bench_notes NAME: the notes markers of section NAME with what stands
# between them in BENCHMARKS.md now. Interpretation is written by hand
# after a run and kept across runs, verbatim.
bench_notes() {
  local s="<!-- bench:$1:notes:start -->" e="<!-- bench:$1:notes:end -->"
  echo "$s"
  if [[ -f $BENCH_FILE ]] && grep -qF "$s" "$BENCH_FILE"; then
    awk -v s="$s" -v e="$e" '$0 == s { on = 1; next } $0 == e { on = 0 } on' "$BENCH_FILE"
  else
    echo '(Interpretation to be written by hand after reading the numbers.)'
  fi
  echo "$e"
}

# bench_write_section NAME FILE: put FILE (which starts and ends with the
# section's markers) in place of section NAME of BENCHMARKS.md, or at its
# end when it has none yet.
bench_write_section() {
  local start="<!-- bench:$1:start -->" end="<!-- bench:$1:end -->" section=$2
  local new=$WORK/BENCHMARKS.md
  if [[ ! -f $BENCH_FILE ]]; then
    printf '# Benchmarks\n\n' >"$BENCH_FILE"
  fi
  if grep -qF "$start" "$BENCH_FILE"; then
    awk -v start="$start" -v end="$end" -v section="$section" '
      $0 == start { while ((getline l < section) > 0) print l; skip = 1; next }
      skip && $0 == end { skip = 0; next }
      !skip' "$BENCH_FILE" >"$new"
  else
    { cat "$BENCH_FILE"; [[ -z $(tail -n 1 "$BENCH_FILE") ]] || echo; cat "$section"; } >"$new"
  fi
  cat "$new" >"$BENCH_FILE"
  echo "updated $BENCH_FILE"
}
