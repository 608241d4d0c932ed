#!/usr/bin/env bash
# bench/api-store.sh: Wharf's compute API on its two metadata stores, SQLite
# (the default, a file in the data dir) and PostgreSQL (--db), measured side
# by side in one run on one machine.
#
# For each store it starts a fresh `wharf server` (fresh data dir, a port
# the kernel picks), then runs bench/apiload for the write, read and mixed
# mixes at each concurrency, prints a table and rewrites this benchmark's
# section of BENCHMARKS.md. Raw JSON lines go to bench/out/api-store.jsonl.
#
# Settings (environment):
#   BENCH_SECONDS      measured seconds per mix and concurrency (default 10)
#   BENCH_WARMUP       unmeasured warm-up seconds before each (default 1)
#   BENCH_CONCURRENCY  concurrencies to run (default "1 16")
#   BENCH_NO_WRITE=1   print the table but leave BENCHMARKS.md alone
#
# PostgreSQL comes from scripts/pg (Debian's packages, installed if missing).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

# shellcheck source=scripts/goenv
source scripts/goenv
# shellcheck source=scripts/pg
source scripts/pg

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-1}
read -ra CONCURRENCY <<<"${BENCH_CONCURRENCY:-1 16}"
MIXES=(write read mixed)
BACKENDS=(sqlite postgres)
BENCH_FILE=$ROOT/BENCHMARKS.md
START_MARK='<!-- bench:api-store:start -->'
END_MARK='<!-- bench:api-store:end -->'

[[ $SECONDS_PER_RUN =~ ^[0-9]+$ && $SECONDS_PER_RUN -gt 0 ]] || { echo "BENCH_SECONDS must be a positive integer" >&2; exit 2; }
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "BENCH_WARMUP must be a whole number of seconds" >&2; exit 2; }

WORK=""
SERVER_PID=""

# stop_server: SIGTERM lets the server close its store cleanly; SIGKILL
# after a grace period so a hung server cannot hang the benchmark.
stop_server() {
  local pid=$SERVER_PID
  SERVER_PID=""
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for (( i = 0; i < 100; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT
  stop_server
  pg_stop
  [[ -n $WORK ]] && rm -rf -- "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wharf-bench.XXXXXX")

echo "==> building"
ensure_go
go build -o "$WORK/bin/wharf" ./cmd/wharf
go build -o "$WORK/bin/apiload" ./bench/apiload

echo "==> starting PostgreSQL"
pg_start
PG_DB_URL=$(pg_createdb wharf_bench)
PSQL=psql
[[ -x $PG_BIN/psql ]] && PSQL=$PG_BIN/psql
# Queries go to the `postgres` database so that they are not counted among
# the benchmark database's sessions.
pg_query() { "$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$PG_URL/postgres?sslmode=disable" -c "$1" </dev/null; }
PG_VERSION=$(pg_query 'SHOW server_version' | awk '{print $1}')

# pg_sessions: sessions ever opened on the benchmark database (PostgreSQL
# 14+), to see whether the server's pool reconnects under load.
pg_sessions() { pg_query "SELECT sessions FROM pg_stat_database WHERE datname = 'wharf_bench'" 2>/dev/null || echo ""; }

# start_server BACKEND: start a fresh server and set SERVER_URL and CREDS.
# Port 0 lets the kernel pick a free port; the server writes the URL it
# bound into the credential file, so no port can be raced for.
start_server() {
  local backend=$1 dir=$WORK/$1
  local -a args=(server --data-dir "$dir/data" --addr 127.0.0.1:0 --log-level warn)
  [[ $backend == postgres ]] && args+=(--db "$PG_DB_URL")
  mkdir -p "$dir"
  "$WORK/bin/wharf" "${args[@]}" >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  CREDS=$dir/data/owner-credentials.json
  local i
  for (( i = 0; i < 300; i++ )); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$dir/server.log" >&2
      echo "wharf server ($backend) exited during start-up" >&2
      return 1
    fi
    if [[ -s $CREDS ]]; then
      SERVER_URL=$(sed -n 's/.*"serverUrl": *"\([^"]*\)".*/\1/p' "$CREDS")
      if [[ -n $SERVER_URL ]] && curl -fsS -o /dev/null --max-time 2 "$SERVER_URL/readyz" 2>/dev/null; then
        return 0
      fi
    fi
    sleep 0.1
  done
  cat "$dir/server.log" >&2
  echo "wharf server ($backend) not ready after 30s" >&2
  return 1
}

# json_field LINE KEY: a scalar from apiload's flat JSON line.
json_field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$1"; }

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/api-store.jsonl
: >"$RAW"
declare -A RPS P50 P99 ERR REQ SESS
TOTAL_ERRORS=0

for backend in "${BACKENDS[@]}"; do
  echo "==> $backend: starting wharf server"
  start_server "$backend"
  echo "    $SERVER_URL"
  for mix in "${MIXES[@]}"; do
    for c in "${CONCURRENCY[@]}"; do
      before=""
      [[ $backend == postgres ]] && before=$(pg_sessions)
      line=$("$WORK/bin/apiload" -creds "$CREDS" -url "$SERVER_URL" -workspace bench \
        -mix "$mix" -concurrency "$c" -duration "${SECONDS_PER_RUN}s" -warmup "${WARMUP}s")
      k=$backend/$mix/$c
      RPS[$k]=$(json_field "$line" rps)
      P50[$k]=$(json_field "$line" p50_ms)
      P99[$k]=$(json_field "$line" p99_ms)
      ERR[$k]=$(json_field "$line" errors)
      REQ[$k]=$(json_field "$line" requests)
      SESS[$k]=""
      if [[ -n $before ]]; then
        after=$(pg_sessions)
        [[ -n $after ]] && SESS[$k]=$(( after - before ))
      fi
      TOTAL_ERRORS=$(( TOTAL_ERRORS + ERR[$k] ))
      printf '{"backend":"%s",%s\n' "$backend" "${line#\{}" >>"$RAW"
      printf '    %-6s c=%-3s %9s req/s  p50 %8s ms  p99 %8s ms  errors %s%s\n' "$mix" "$c" \
        "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${ERR[$k]}" \
        "${SESS[$k]:+  (pg sessions opened: ${SESS[$k]})}"
    done
  done
  echo "==> $backend: stopping wharf server"
  stop_server
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# The table, in markdown, used for both the terminal and BENCHMARKS.md.
TABLE=$WORK/table.md
{
  echo '| mix | concurrency | SQLite req/s | SQLite p50 ms | SQLite p99 ms | PostgreSQL req/s | PostgreSQL p50 ms | PostgreSQL p99 ms | SQLite/PostgreSQL |'
  echo '|---|--:|--:|--:|--:|--:|--:|--:|--:|'
  for mix in "${MIXES[@]}"; do
    for c in "${CONCURRENCY[@]}"; do
      s=sqlite/$mix/$c p=postgres/$mix/$c
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$mix" "$c" \
        "${RPS[$s]}" "${P50[$s]}" "${P99[$s]}" "${RPS[$p]}" "${P50[$p]}" "${P99[$p]}" \
        "$(ratio "${RPS[$s]}" "${RPS[$p]}")"
    done
  done
} >"$TABLE"

TOTAL_REQUESTS=0
for k in "${!REQ[@]}"; do TOTAL_REQUESTS=$(( TOTAL_REQUESTS + REQ[$k] )); done

echo
cat "$TABLE"
echo
echo "errors: $TOTAL_ERRORS of $TOTAL_REQUESTS requests"
echo "raw results: $RAW"

if [[ ${BENCH_NO_WRITE:-} == 1 ]]; then
  echo "BENCH_NO_WRITE=1: BENCHMARKS.md left alone"
  exit 0
fi

mem_gib=$(free -g | awk '/^Mem:/ { print $2 }')
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[[ -n $cpu_model ]] || cpu_model=$(uname -m)
sqlite_mod=$(go list -m -f '{{.Version}}' modernc.org/sqlite 2>/dev/null || echo unknown)

SECTION=$WORK/section.md
{
  echo "$START_MARK"
  echo '## api-store: compute API on SQLite vs PostgreSQL'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/api-store.sh` (settings: `BENCH_SECONDS`, `BENCH_WARMUP`, `BENCH_CONCURRENCY`).'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM (\`free -g\` total), Linux $(uname -r)"
  echo "- Go: $(go env GOVERSION); SQLite: modernc.org/sqlite $sqlite_mod; PostgreSQL: $PG_VERSION (local, TCP on 127.0.0.1, fsync and synchronous_commit on)"
  echo "- Each cell: ${SECONDS_PER_RUN} s measured after ${WARMUP} s warm-up; load generator, Wharf and PostgreSQL on the same machine"
  echo "- Mixes: \`write\` = PUT a compute (rewriting 32 names per worker); \`read\` = GET one of 100 computes; \`mixed\` = 4 GETs to 1 PUT"
  echo "- Errors: $TOTAL_ERRORS of $TOTAL_REQUESTS requests"
  echo
  cat "$TABLE"
  echo
  sess=""
  for mix in "${MIXES[@]}"; do
    for c in "${CONCURRENCY[@]}"; do
      [[ -n ${SESS[postgres/$mix/$c]:-} ]] && sess+="${sess:+, }$mix c=$c: ${SESS[postgres/$mix/$c]}"
    done
  done
  if [[ -n $sess ]]; then
    echo "PostgreSQL connections Wharf opened per cell, warm-up included (\`pg_stat_database.sessions\`): $sess."
    echo
  fi
  # Interpretation is written by hand after a run and kept across runs:
  # it sits between these notes markers and is carried over verbatim.
  echo '<!-- bench:api-store:notes:start -->'
  if [[ -f $BENCH_FILE ]]; then
    awk '/<!-- bench:api-store:notes:start -->/ { on = 1; next }
         /<!-- bench:api-store:notes:end -->/ { on = 0 }
         on' "$BENCH_FILE"
  fi
  echo '<!-- bench:api-store:notes:end -->'
  echo "$END_MARK"
} >"$SECTION"

if [[ ! -f $BENCH_FILE ]]; then
  printf '# Benchmarks\n\n' >"$BENCH_FILE"
fi
NEW=$WORK/BENCHMARKS.md
if grep -qF "$START_MARK" "$BENCH_FILE"; then
  awk -v start="$START_MARK" -v end="$END_MARK" -v section="$SECTION" '
    $0 == start { while ((getline l < section) > 0) print l; skip = 1; next }
    skip && $0 == end { skip = 0; next }
    !skip' "$BENCH_FILE" >"$NEW"
else
  { cat "$BENCH_FILE"; [[ -z $(tail -n 1 "$BENCH_FILE") ]] || echo; cat "$SECTION"; } >"$NEW"
fi
cat "$NEW" >"$BENCH_FILE"
echo "updated $BENCH_FILE"
