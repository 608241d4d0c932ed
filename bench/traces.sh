#!/usr/bin/env bash
# bench/traces.sh: logging MLflow traces into Wharf (SQLite and PostgreSQL)
# and into MLflow's own tracking server, side by side in one run on one
# machine with one load generator (bench/trackload -scenario traces).
#
# One trace is what the mlflow 3.x client sends when a traced call ends:
# POST /api/3.0/mlflow/traces with the trace's info, then PUT traces.json
# (three spans, about 3 KB) below the artifact location the answer names,
# through the server's artifact proxy. BENCH_CONCURRENCY clients log
# traces for BENCH_SECONDS after a warm-up. At the end it prints a table
# and rewrites this benchmark's section of BENCHMARKS.md; raw JSON lines go
# to bench/out/traces.jsonl.
#
# Settings (environment):
#   BENCH_SECONDS         measured seconds per server (default 15)
#   BENCH_WARMUP          unmeasured warm-up seconds (default 2)
#   BENCH_CONCURRENCY     clients (default 4)
#   BENCH_MLFLOW_WORKERS  `mlflow server --workers` (default 2)
#   BENCH_SERVERS         which columns to run (default
#                         "wharf-sqlite wharf-postgres mlflow")
#   BENCH_NO_WRITE=1      print the table but leave BENCHMARKS.md alone
#
# MLflow comes from PyPI into bench/.venv, pinned in
# bench/requirements-bench.txt; PostgreSQL from scripts/pg.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/pg
source scripts/pg

SECONDS_PER_RUN=${BENCH_SECONDS:-15}
WARMUP=${BENCH_WARMUP:-2}
CONCURRENCY=${BENCH_CONCURRENCY:-4}
MLFLOW_WORKERS=${BENCH_MLFLOW_WORKERS:-2}
read -ra SERVERS <<<"${BENCH_SERVERS:-wharf-sqlite wharf-postgres mlflow}"
ALL_SERVERS=(wharf-sqlite wharf-postgres mlflow)

for v in SECONDS_PER_RUN CONCURRENCY MLFLOW_WORKERS; do
  bench_require_posint "$v" "${!v}"
done
bench_require_whole BENCH_WARMUP "$WARMUP"
bench_require_names BENCH_SERVERS server "${ALL_SERVERS[*]}" "${SERVERS[@]}"

BENCH_EXIT_HOOKS+=(pg_stop)
bench_start_work wharf-traces
LOAD_START=$(bench_loadavg)

needs() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }

echo "==> building"
ensure_go
go build -o "$WORK/bin/trackload" ./bench/trackload
if needs wharf-sqlite || needs wharf-postgres; then
  go build -o "$WORK/bin/wharf" ./cmd/wharf
fi
declare -A UNAVAILABLE=()
if needs mlflow && ! bench_pip_pins mlflow; then
  UNAVAILABLE[mlflow]="mlflow could not be installed from PyPI here"
fi
if needs wharf-postgres; then
  echo "==> starting PostgreSQL"
  pg_start
  PG_DB_URL=$(pg_createdb wharf_traces)
  PG_VERSION=$("$PG_BIN/postgres" --version | awk '{print $3}')
fi

# start_SERVER: start a fresh server; set BASE_URL (what /api/2.0/mlflow is
# appended to) and TOKEN.
start_wharf() {
  local backend=$1
  local -a args=()
  [[ $backend == postgres ]] && args+=(--db "$PG_DB_URL")
  bench_wharf_mlflow "wharf ($backend)" "$WORK/wharf-$1" "${args[@]}"
}

start_mlflow() {
  local dir=$WORK/mlflow port
  mkdir -p "$dir/art"
  port=$(bench_free_port)
  # Artifacts go through the server's proxy (mlflow-artifacts:/, the
  # default with --artifacts-destination), as they do with Wharf. The job
  # runner and the request log are off, as in bench/tracking.sh.
  ( cd "$dir" && MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec setsid "$VENV/bin/mlflow" server \
      --backend-store-uri "sqlite:///$dir/mlflow.db" --artifacts-destination "$dir/art" \
      --host 127.0.0.1 --port "$port" --workers "$MLFLOW_WORKERS" \
      --uvicorn-opts '--no-access-log' ) >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  bench_wait_http mlflow "http://127.0.0.1:$port/health" "$dir/server.log"
  local i
  for (( i = 0; i < 600; i++ )); do
    (( $(grep -c 'Application startup complete' "$dir/server.log" || true) >= MLFLOW_WORKERS )) && break
    sleep 0.1
  done
  BASE_URL=http://127.0.0.1:$port
  TOKEN=""
}

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/traces.jsonl
: >"$RAW"
declare -A R=() FAILED=()
TOTAL_ERRORS=0 TOTAL_REQUESTS=0

for server in "${SERVERS[@]}"; do
  if [[ -n ${UNAVAILABLE[$server]:-} ]]; then
    echo "==> $server: skipped (${UNAVAILABLE[$server]})"
    continue
  fi
  echo "==> $server: starting"
  case $server in
    wharf-sqlite) start_wharf sqlite ;;
    wharf-postgres) start_wharf postgres ;;
    mlflow) start_mlflow ;;
  esac || { FAILED[$server]="did not start"; stop_server; continue; }
  args=(-url "$BASE_URL" -scenario traces -duration "${SECONDS_PER_RUN}s" -warmup "${WARMUP}s" -concurrency "$CONCURRENCY")
  [[ -n $TOKEN ]] && args+=(-token "$TOKEN")
  rc=0
  "$WORK/bin/trackload" "${args[@]}" >"$WORK/line" 2> >(tee -a "$WORK/$server.trackload.log" >&2) &
  LOAD_PID=$!
  bench_wait_load || rc=$?
  line=$(cat "$WORK/line")
  if (( rc != 0 )) || [[ -z $line ]]; then
    FAILED[$server]="trackload failed"
  else
    printf '{"server":"%s",%s\n' "$server" "${line#\{}" >>"$RAW"
    for f in requests errors rps p50_ms p99_ms; do R[$server/$f]=$(bench_jget "$line" "$f"); done
    TOTAL_REQUESTS=$(( TOTAL_REQUESTS + 2 * ${R[$server/requests]} ))
    TOTAL_ERRORS=$(( TOTAL_ERRORS + ${R[$server/errors]} ))
    printf '    %10s traces/s  p50 %9s ms  p99 %9s ms  errors %s\n' \
      "${R[$server/rps]}" "${R[$server/p50_ms]}" "${R[$server/p99_ms]}" "${R[$server/errors]}"
  fi
  echo "==> $server: stopping"
  stop_server
done
LOAD_END=$(bench_loadavg)

# ---- the table ----------------------------------------------------------

cell() {
  local server=$1 key=$2
  if ! needs "$server"; then echo "not run"; return; fi
  if [[ -n ${UNAVAILABLE[$server]:-} ]]; then echo "n/a (not installable)"; return; fi
  local v=${R[$server/$key]:-}
  [[ -n $v ]] && { echo "$v"; return; }
  [[ -n ${FAILED[$server]:-} ]] && { echo "failed"; return; }
  echo "n/a"
}
# ratio A B: A / B to two decimals; > 1 means Wharf is faster (for
# latency the caller passes peer, Wharf).
ratio() {
  [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] || { echo "–"; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a > 0) printf "%.2f×", a / b; else print "–" }'
}
HEADS="| measure | Wharf SQLite | Wharf PostgreSQL | MLflow | Wharf SQLite / MLflow | Wharf PostgreSQL / MLflow |"
row() { # row LABEL KEY KIND (thr: higher is better; lat: lower is better)
  local label=$1 key=$2 kind=$3 s m ws wp
  local line="| $label |"
  for s in "${ALL_SERVERS[@]}"; do line+=" $(cell "$s" "$key") |"; done
  m=${R[mlflow/$key]:-} ws=${R[wharf-sqlite/$key]:-} wp=${R[wharf-postgres/$key]:-}
  if [[ $kind == thr ]]; then
    line+=" $(ratio "$ws" "$m") | $(ratio "$wp" "$m") |"
  else
    line+=" $(ratio "$m" "$ws") | $(ratio "$m" "$wp") |"
  fi
  echo "$line"
}
TABLE=$WORK/table.md
{
  echo "$HEADS"
  echo "|---|--:|--:|--:|--:|--:|"
  row "traces/s ($CONCURRENCY clients)" rps thr
  row "p50 ms per trace (info + spans)" p50_ms lat
  row "p99 ms per trace" p99_ms lat
} >"$TABLE"

echo
cat "$TABLE"
echo
echo "errors: $TOTAL_ERRORS of about $TOTAL_REQUESTS requests"
for s in "${!FAILED[@]}"; do echo "FAILED: $s: ${FAILED[$s]}" >&2; done
echo "load average: $LOAD_START at the start, $LOAD_END at the end"
echo "raw results: $RAW"

bench_stop_if_no_write
if (( ${#FAILED[@]} > 0 || TOTAL_ERRORS > 0 )); then
  echo "not writing BENCHMARKS.md: a server failed or answered with errors" >&2
  exit 1
fi

versions="Go: $(go env GOVERSION); Wharf: $(bench_wharf_rev) (SQLite: modernc.org/sqlite $(bench_sqlite_version))"
needs wharf-postgres && versions+="; PostgreSQL: $PG_VERSION (local, TCP, fsync and synchronous_commit on)"
if needs mlflow && [[ -z ${UNAVAILABLE[mlflow]:-} ]]; then
  versions+="; MLflow: $(bench_installed mlflow) (SQLite, artifacts proxied to a local folder, uvicorn, --workers $MLFLOW_WORKERS)"
fi

SECTION=$WORK/section.md
{
  echo '<!-- bench:traces:start -->'
  echo '## traces: logging MLflow traces into Wharf and MLflow'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/traces.sh` (settings: `BENCH_SECONDS`, `BENCH_CONCURRENCY`, `BENCH_MLFLOW_WORKERS`, `BENCH_SERVERS`); load generator `bench/trackload -scenario traces`.'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine); load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end"
  echo "- Versions: $versions"
  echo "- One trace is what the mlflow 3.x client sends when a traced call ends: \`POST /api/3.0/mlflow/traces\` (the trace's info, tags and metadata), then \`PUT\` of \`traces.json\` (three spans, about 3 KB) below the artifact location the answer names, through the artifact proxy; the time of a trace is both requests"
  echo "- $CONCURRENCY clients, each with one trace in flight (closed loop), over one keep-alive HTTP client, ${SECONDS_PER_RUN} s after ${WARMUP} s warm-up; every server fresh (empty database), one after the other, on the same machine as the load generator"
  echo "- Ratios are Wharf's advantage: throughput Wharf ÷ MLflow, latency MLflow ÷ Wharf, so > 1 means Wharf is faster"
  echo "- Errors: $TOTAL_ERRORS of about $TOTAL_REQUESTS requests"
  for s in "${!UNAVAILABLE[@]}"; do echo "- $s: ${UNAVAILABLE[$s]}; its column is empty"; done
  echo
  cat "$TABLE"
  echo
  bench_notes traces
  echo '<!-- bench:traces:end -->'
} >"$SECTION"

bench_write_section traces "$SECTION"
