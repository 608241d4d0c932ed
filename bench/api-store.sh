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

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/pg
source scripts/pg

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-1}
read -ra CONCURRENCY <<<"${BENCH_CONCURRENCY:-1 16}"
MIXES=(write read mixed)
BACKENDS=(sqlite postgres)

bench_require_posint BENCH_SECONDS "$SECONDS_PER_RUN"
bench_require_whole BENCH_WARMUP "$WARMUP"

BENCH_EXIT_HOOKS+=(pg_stop)
bench_start_work wharf-bench

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
start_server() {
  local backend=$1
  local -a args=()
  [[ $backend == postgres ]] && args+=(--db "$PG_DB_URL")
  bench_wharf_start "wharf server ($backend)" "$WORK/$backend" "${args[@]}" || return 1
  SERVER_URL=$WHARF_SERVER_URL
  CREDS=$WHARF_CREDS
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

bench_stop_if_no_write

SECTION=$WORK/section.md
{
  echo '<!-- bench:api-store:start -->'
  echo '## api-store: compute API on SQLite vs PostgreSQL'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/api-store.sh` (settings: `BENCH_SECONDS`, `BENCH_WARMUP`, `BENCH_CONCURRENCY`).'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine)"
  echo "- Go: $(go env GOVERSION); SQLite: modernc.org/sqlite $(bench_sqlite_version); PostgreSQL: $PG_VERSION (local, TCP on 127.0.0.1, fsync and synchronous_commit on)"
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
  bench_notes api-store
  echo '<!-- bench:api-store:end -->'
} >"$SECTION"

bench_write_section api-store "$SECTION"
