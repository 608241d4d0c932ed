#!/usr/bin/env bash
# bench/tracking.sh: the MLflow tracking API on Wharf (SQLite and
# PostgreSQL), MLflow's own tracking server and FastTrackML, measured side by
# side in one run on one machine with one load generator (bench/trackload).
#
# For each server it starts a fresh instance (fresh temp dir, a free port),
# runs three scenarios, stops it, and at the end prints a table and rewrites
# this benchmark's section of BENCHMARKS.md. Raw JSON lines go to
# bench/out/tracking.jsonl.
#
#   ingest     BENCH_CONCURRENCY clients, each logging into its own run with
#              runs/log-batch requests of 1,000 metrics (10 keys x 100 steps)
#   logmetric  one client, one runs/log-metric per request
#   search     seed BENCH_SEARCH_RUNS runs (runs/create + runs/log-batch with
#              param alpha and metric rmse), seeding stopped after
#              BENCH_SEED_MAX seconds, then 20 timed runs/search calls with
#              `metrics.rmse < 0.5 and params.alpha = '0.1'`, max_results
#              100, order_by metrics.rmse ASC, every answer checked
#
# Settings (environment):
#   BENCH_SECONDS         measured seconds of ingest and of logmetric (default 15)
#   BENCH_WARMUP          unmeasured warm-up seconds before each (default 2)
#   BENCH_CONCURRENCY     ingest clients (default 4)
#   BENCH_SEARCH_RUNS     runs to seed for search (default 100000)
#   BENCH_SEED_MAX        seconds of seeding at most, per server (default 600)
#   BENCH_MLFLOW_WORKERS  `mlflow server --workers` (default 2)
#   BENCH_SERVERS         which columns to run (default
#                         "wharf-sqlite wharf-postgres mlflow fasttrackml")
#   BENCH_SCENARIOS       which scenarios to run (default "ingest logmetric
#                         search"); the rows of the others read "n/a"
#   BENCH_NO_WRITE=1      print the table but leave BENCHMARKS.md alone
#
# MLflow and FastTrackML come from PyPI into bench/.venv, pinned in
# bench/requirements-bench.txt; PostgreSQL from scripts/pg.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/pg
source scripts/pg

SECONDS_PER_RUN=${BENCH_SECONDS:-15}
WARMUP=${BENCH_WARMUP:-2}
CONCURRENCY=${BENCH_CONCURRENCY:-4}
SEARCH_RUNS=${BENCH_SEARCH_RUNS:-100000}
SEED_MAX=${BENCH_SEED_MAX:-600}
MLFLOW_WORKERS=${BENCH_MLFLOW_WORKERS:-2}
read -ra SERVERS <<<"${BENCH_SERVERS:-wharf-sqlite wharf-postgres mlflow fasttrackml}"
ALL_SERVERS=(wharf-sqlite wharf-postgres mlflow fasttrackml)
read -ra SCENARIOS <<<"${BENCH_SCENARIOS:-ingest logmetric search}"

for v in SECONDS_PER_RUN CONCURRENCY SEARCH_RUNS SEED_MAX MLFLOW_WORKERS; do
  bench_require_posint "$v" "${!v}"
done
bench_require_whole BENCH_WARMUP "$WARMUP"
bench_require_names BENCH_SERVERS server "${ALL_SERVERS[*]}" "${SERVERS[@]}"
bench_require_names BENCH_SCENARIOS scenario "ingest logmetric search" "${SCENARIOS[@]}"

BENCH_EXIT_HOOKS+=(pg_stop)
bench_start_work wharf-tracking
LOAD_START=$(bench_loadavg)

needs() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }
needs_wharf() { needs wharf-sqlite || needs wharf-postgres; }

echo "==> building"
ensure_go
go build -o "$WORK/bin/trackload" ./bench/trackload
if needs_wharf; then
  go build -o "$WORK/bin/wharf" ./cmd/wharf
fi

# The venv is rebuilt when requirements-bench.txt changes. FastTrackML's
# line goes in with --no-deps (see the comment in that file).
declare -A UNAVAILABLE=()
if needs mlflow || needs fasttrackml; then
  stamp=$VENV/.requirements-bench.sha256
  want_sum=$(sha256sum "$REQS" | cut -d' ' -f1)
  if [[ ! -x $VENV/bin/python || $(cat "$stamp" 2>/dev/null) != "$want_sum" ]]; then
    echo "==> installing the peers into bench/.venv"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
    ftml_req=$(grep -E '^fasttrackml==' "$REQS" || true)
    grep -vE '^fasttrackml==' "$REQS" >"$WORK/reqs-main.txt"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$WORK/reqs-main.txt" ||
      echo "pip could not install $(grep -E '^[a-z]' "$WORK/reqs-main.txt" | tr '\n' ' ')" >&2
    if [[ -n $ftml_req ]]; then
      "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$ftml_req" ||
        echo "pip could not install $ftml_req" >&2
    fi
    if [[ -x $VENV/bin/mlflow && -x $VENV/bin/fml ]]; then
      echo "$want_sum" >"$stamp"
    fi
  fi
  [[ -x $VENV/bin/mlflow ]] || UNAVAILABLE[mlflow]="mlflow could not be installed from PyPI here"
  [[ -x $VENV/bin/fml ]] || UNAVAILABLE[fasttrackml]="fasttrackml could not be installed from PyPI here"
fi
if needs wharf-postgres; then
  echo "==> starting PostgreSQL"
  pg_start
  PG_DB_URL=$(pg_createdb wharf_tracking)
  PG_VERSION=$("$PG_BIN/postgres" --version | awk '{print $3}')
fi

# start_SERVER: start a fresh server; set BASE_URL (what /api/2.0/mlflow is
# appended to) and TOKEN.
start_wharf() {
  local backend=$1
  local -a args=()
  [[ $backend == postgres ]] && args+=(--db "$PG_DB_URL")
  bench_wharf_mlflow "wharf ($backend)" "$WORK/$2" "${args[@]}"
}

start_mlflow() {
  local dir=$WORK/mlflow port
  mkdir -p "$dir/art"
  port=$(bench_free_port)
  # The job runner (huey consumers for GenAI scorers) is switched off: the
  # tracking API does not use it, and its processes would take CPU from
  # the server on two cores. Request access logs are off, as Wharf's and
  # FastTrackML's are at the log levels used here.
  ( cd "$dir" && MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec setsid "$VENV/bin/mlflow" server \
      --backend-store-uri "sqlite:///$dir/mlflow.db" --default-artifact-root "$dir/art" \
      --host 127.0.0.1 --port "$port" --workers "$MLFLOW_WORKERS" \
      --uvicorn-opts '--no-access-log' ) >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  bench_wait_http mlflow "http://127.0.0.1:$port/health" "$dir/server.log"
  # /health answers as soon as one worker is up; wait for all of them.
  local i
  for (( i = 0; i < 600; i++ )); do
    (( $(grep -c 'Application startup complete' "$dir/server.log" || true) >= MLFLOW_WORKERS )) && break
    sleep 0.1
  done
  BASE_URL=http://127.0.0.1:$port
  TOKEN=""
}

start_fasttrackml() {
  local dir=$WORK/fasttrackml port
  mkdir -p "$dir/art"
  port=$(bench_free_port)
  ( cd "$dir" && exec setsid "$VENV/bin/fml" server --log-level warn \
      --listen-address "127.0.0.1:$port" --database-uri "sqlite://$dir/ftml.db" \
      --default-artifact-root "$dir/art" ) >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  bench_wait_http fasttrackml "http://127.0.0.1:$port/health" "$dir/server.log"
  BASE_URL=http://127.0.0.1:$port
  TOKEN=""
}

start_server() {
  case $1 in
    wharf-sqlite) start_wharf sqlite wharf-sqlite ;;
    wharf-postgres) start_wharf postgres wharf-postgres ;;
    mlflow) start_mlflow ;;
    fasttrackml) start_fasttrackml ;;
  esac
}

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/tracking.jsonl
: >"$RAW"
declare -A R=()        # R[server/field] = value
declare -A FAILED=()   # FAILED[server] = why
TOTAL_ERRORS=0
TOTAL_REQUESTS=0

run_scenario() {
  local server=$1 sc=$2 line rc=0
  local -a args=(-url "$BASE_URL" -scenario "$sc")
  [[ -n $TOKEN ]] && args+=(-token "$TOKEN")
  case $sc in
    ingest) args+=(-duration "${SECONDS_PER_RUN}s" -warmup "${WARMUP}s" -concurrency "$CONCURRENCY") ;;
    logmetric) args+=(-duration "${SECONDS_PER_RUN}s" -warmup "${WARMUP}s") ;;
    search) args+=(-runs "$SEARCH_RUNS" -seed-max "${SEED_MAX}s") ;;
  esac
  "$WORK/bin/trackload" "${args[@]}" >"$WORK/line" 2> >(tee -a "$WORK/$server.trackload.log" >&2) &
  LOAD_PID=$!
  bench_wait_load || rc=$?
  line=$(cat "$WORK/line")
  if (( rc != 0 )) || [[ -z $line ]]; then
    FAILED[$server]="$sc: trackload failed"
    return 1
  fi
  printf '{"server":"%s",%s\n' "$server" "${line#\{}" >>"$RAW"
  local f
  case $sc in
    ingest | logmetric)
      for f in requests errors rps metrics_per_s p50_ms p99_ms; do R[$server/$sc/$f]=$(bench_jget "$line" "$f"); done
      TOTAL_REQUESTS=$(( TOTAL_REQUESTS + ${R[$server/$sc/requests]} ))
      TOTAL_ERRORS=$(( TOTAL_ERRORS + ${R[$server/$sc/errors]} ))
      printf '    %-9s %10s req/s %12s metrics/s  p50 %9s ms  p99 %9s ms  errors %s\n' "$sc" \
        "${R[$server/$sc/rps]}" "${R[$server/$sc/metrics_per_s]}" "${R[$server/$sc/p50_ms]}" \
        "${R[$server/$sc/p99_ms]}" "${R[$server/$sc/errors]}"
      ;;
    search)
      for f in runs_seeded seed_capped seed_seconds seed_runs_per_s seed_errors matching returned reps errors p50_ms p99_ms; do
        R[$server/$sc/$f]=$(bench_jget "$line" "$f")
      done
      TOTAL_REQUESTS=$(( TOTAL_REQUESTS + 2 * ${R[$server/$sc/runs_seeded]} + ${R[$server/$sc/seed_errors]} + ${R[$server/$sc/reps]} ))
      TOTAL_ERRORS=$(( TOTAL_ERRORS + ${R[$server/$sc/errors]} + ${R[$server/$sc/seed_errors]} ))
      printf '    %-9s %s runs seeded in %s s (%s runs/s)  p50 %s ms  p99 %s ms  %s returned  errors %s\n' "$sc" \
        "${R[$server/$sc/runs_seeded]}" "${R[$server/$sc/seed_seconds]}" "${R[$server/$sc/seed_runs_per_s]}" \
        "${R[$server/$sc/p50_ms]}" "${R[$server/$sc/p99_ms]}" "${R[$server/$sc/returned]}" \
        "$(( ${R[$server/$sc/errors]} + ${R[$server/$sc/seed_errors]} ))"
      ;;
  esac
}

for server in "${SERVERS[@]}"; do
  if [[ -n ${UNAVAILABLE[$server]:-} ]]; then
    echo "==> $server: skipped (${UNAVAILABLE[$server]})"
    continue
  fi
  echo "==> $server: starting"
  if ! start_server "$server"; then
    FAILED[$server]="did not start"
    stop_server
    continue
  fi
  echo "    $BASE_URL"
  for sc in "${SCENARIOS[@]}"; do
    run_scenario "$server" "$sc" || break
  done
  echo "==> $server: stopping"
  stop_server
done
LOAD_END=$(bench_loadavg)

# ---- the table ----------------------------------------------------------

# Cells: the value, or why there is none.
cell() {
  local server=$1 key=$2
  if ! needs "$server"; then echo "not run"; return; fi
  if [[ -n ${UNAVAILABLE[$server]:-} ]]; then echo "n/a (not installable)"; return; fi
  local v=${R[$server/$key]:-}
  [[ -n $v ]] && { echo "$v"; return; }
  [[ -n ${FAILED[$server]:-} ]] && { echo "failed"; return; }
  echo "n/a"
}
# fmt_int 12345.0 -> 12,345
fmt_int() {
  [[ $1 =~ ^[0-9.]+$ ]] || { echo "$1"; return; }
  printf '%.0f\n' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'
}
fmt_ms() { [[ $1 =~ ^[0-9.]+$ ]] && printf '%.1f' "$1" || echo "$1"; }
fmt_ms_pair() { [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] && printf '%.1f / %.1f' "$1" "$2" || echo "$1"; }
# ratio A B: A / B to two decimals (for throughput: Wharf / peer; for
# latency the caller swaps them, peer / Wharf, so >1 always means Wharf is
# faster).
ratio() {
  [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] || { echo "–"; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a > 0) printf "%.2f×", a / b; else print "–" }'
}
has() { needs "$1" && [[ -z ${UNAVAILABLE[$1]:-} ]]; }

COLS=() HEADS=()
for s in "${ALL_SERVERS[@]}"; do
  case $s in
    wharf-sqlite) h="Wharf SQLite" ;;
    wharf-postgres) h="Wharf PostgreSQL" ;;
    mlflow) h="MLflow" ;;
    fasttrackml) h="FastTrackML" ;;
  esac
  # Wharf PostgreSQL is an optional column: left out when not run.
  if [[ $s == wharf-postgres ]] && ! needs "$s"; then continue; fi
  COLS+=("$s") HEADS+=("$h")
done

W=wharf-sqlite
# row LABEL KIND KEY [KEY2]: KIND is thr (higher is better), lat (lower is
# better), ms2 (p50 / p99 pair, no ratio), int (count, no ratio).
row() {
  local label=$1 kind=$2 key=$3 key2=${4:-} s v
  local -a cells=()
  for s in "${COLS[@]}"; do
    v=$(cell "$s" "$key")
    case $kind in
      thr) cells+=("$(fmt_int "$v")") ;;
      int)
        v=$(fmt_int "$v")
        [[ $key == search/runs_seeded && ${R[$s/search/seed_capped]:-} == true ]] && v+=" (time cap)"
        cells+=("$v") ;;
      lat) cells+=("$(fmt_ms "$v")") ;;
      ms2) cells+=("$(fmt_ms_pair "$v" "$(cell "$s" "$key2")")") ;;
    esac
  done
  local rm="–" rf="–"
  case $kind in
    thr)
      rm=$(ratio "${R[$W/$key]:-}" "${R[mlflow/$key]:-}")
      rf=$(ratio "${R[$W/$key]:-}" "${R[fasttrackml/$key]:-}") ;;
    lat)
      rm=$(ratio "${R[mlflow/$key]:-}" "${R[$W/$key]:-}")
      rf=$(ratio "${R[fasttrackml/$key]:-}" "${R[$W/$key]:-}")
      # A search ratio between different run counts gets a mark.
      if [[ $key == search/* ]]; then
        [[ $rm != "–" && ${R[$W/search/runs_seeded]:-} != "${R[mlflow/search/runs_seeded]:-}" ]] && rm+=" †"
        [[ $rf != "–" && ${R[$W/search/runs_seeded]:-} != "${R[fasttrackml/search/runs_seeded]:-}" ]] && rf+=" †"
      fi ;;
  esac
  local line="| $label |" c
  for c in "${cells[@]}"; do line+=" $c |"; done
  echo "$line $rm | $rf |"
}

TABLE=$WORK/table.md
{
  hdr="| measure |"; sep="|---|"
  for h in "${HEADS[@]}"; do hdr+=" $h |"; sep+="--:|"; done
  echo "$hdr Wharf/MLflow | Wharf/FastTrackML |"
  echo "$sep--:|--:|"
  row "ingest: metrics/s ($CONCURRENCY clients × 1,000-metric log-batch)" thr ingest/metrics_per_s
  row "ingest: log-batch p50 / p99 ms" ms2 ingest/p50_ms ingest/p99_ms
  row "log-metric: p50 ms (1 client)" lat logmetric/p50_ms
  row "log-metric: p99 ms" lat logmetric/p99_ms
  row "log-metric: req/s" thr logmetric/rps
  row "search: runs seeded (of $(fmt_int "$SEARCH_RUNS") wanted, ≤ ${SEED_MAX} s)" int search/runs_seeded
  row "search: seeding runs/s (create + log-batch)" thr search/seed_runs_per_s
  row "search: p50 ms (20 searches)" lat search/p50_ms
  row "search: p99 ms (the slowest of 20)" lat search/p99_ms
} >"$TABLE"

echo
cat "$TABLE"
echo
echo "errors: $TOTAL_ERRORS of about $TOTAL_REQUESTS requests"
for s in "${!FAILED[@]}"; do echo "FAILED: $s: ${FAILED[$s]} (log: trackload stderr above)" >&2; done
echo "load average: $LOAD_START at the start, $LOAD_END at the end"
echo "raw results: $RAW"

bench_stop_if_no_write
if (( ${#FAILED[@]} > 0 || TOTAL_ERRORS > 0 )); then
  echo "not writing BENCHMARKS.md: a server failed or answered with errors" >&2
  exit 1
fi

# ---- the section --------------------------------------------------------

versions="Go: $(go env GOVERSION)"
if needs_wharf; then
  versions+="; Wharf: $(bench_wharf_rev) (SQLite: modernc.org/sqlite $(bench_sqlite_version))"
  needs wharf-postgres && versions+="; PostgreSQL: $PG_VERSION (local, TCP, fsync and synchronous_commit on)"
fi
if has mlflow; then
  versions+="; MLflow: $("$VENV/bin/mlflow" --version | awk '{print $NF}') (SQLite, uvicorn, --workers $MLFLOW_WORKERS)"
fi
if has fasttrackml; then
  versions+="; FastTrackML: $("$VENV/bin/fml" --version | awk '{print $NF}') (SQLite)"
fi

# The targets, judged from this run's numbers.
target() { # target NAME VALUE OP LIMIT
  awk -v v="$2" -v l="$4" -v op="$3" -v n="$1" 'BEGIN {
    if (v == "" || v !~ /^[0-9.]+$/) { printf "%s: not measured", n; exit }
    ok = (op == ">=") ? (v >= l) : (v < l)
    printf "%s: %s (%s)", n, ok ? "**met**" : "**not met**", v }'
}
ing=${R[$W/ingest/metrics_per_s]:-}
t1=$(target "ingest ≥ 10× MLflow" "$(ratio "$ing" "${R[mlflow/ingest/metrics_per_s]:-}" | tr -d '×')" ">=" 10)
t2=$(target "ingest ≥ 2.5× FastTrackML" "$(ratio "$ing" "${R[fasttrackml/ingest/metrics_per_s]:-}" | tr -d '×')" ">=" 2.5)
# search_target SERVER LABEL: the search target for one Wharf column.
search_target() {
  if ! needs "$1"; then
    echo "search p50 < 20 ms at 100,000 runs on $2: not measured (not run)"
  elif [[ ${R[$1/search/runs_seeded]:-0} -ge 100000 ]]; then
    target "search p50 < 20 ms at 100,000 runs on $2" "${R[$1/search/p50_ms]:-}" "<" 20
  else
    echo "search p50 < 20 ms at 100,000 runs on $2: not measured ($2 seeded ${R[$1/search/runs_seeded]:-0} runs)"
  fi
}
t3="$(search_target wharf-sqlite SQLite); $(search_target wharf-postgres PostgreSQL)"

SECTION=$WORK/section.md
{
  echo '<!-- bench:tracking:start -->'
  echo '## tracking: the MLflow tracking API on Wharf, MLflow and FastTrackML'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/tracking.sh` (settings: `BENCH_SECONDS`, `BENCH_SEARCH_RUNS`, `BENCH_SEED_MAX`, `BENCH_CONCURRENCY`, `BENCH_MLFLOW_WORKERS`, `BENCH_SERVERS`, `BENCH_SCENARIOS`); load generator `bench/trackload`.'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine); load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end"
  echo "- Versions: $versions"
  echo "- Every server on the same machine as the load generator, one after the other, each fresh (empty database), over one keep-alive HTTP client, each client with one request in flight (closed loop)"
  echo "- ingest: $CONCURRENCY clients, each logging into its own run with \`runs/log-batch\` of 1,000 metrics (10 keys × 100 steps, new steps every request), ${SECONDS_PER_RUN} s after ${WARMUP} s warm-up; log-metric: 1 client, single \`runs/log-metric\` calls, ${SECONDS_PER_RUN} s after ${WARMUP} s warm-up"
  echo "- search: up to $(fmt_int "$SEARCH_RUNS") runs seeded into one experiment by 8 clients (\`runs/create\`, then \`runs/log-batch\` with param \`alpha\` (10 values) and metric \`rmse\`), seeding stopped after ${SEED_MAX} s; then 1 unmeasured and 20 timed \`runs/search\` with \`metrics.rmse < 0.5 and params.alpha = '0.1'\` (about 1 run in 20 matches), \`max_results\` 100, \`order_by\` \`metrics.rmse ASC\`; every answer is checked (the right 100 runs in order)"
  echo "- Ratios are Wharf SQLite's advantage: throughput Wharf ÷ peer, latency peer ÷ Wharf, so > 1 means Wharf is faster. † = the two searched different numbers of runs (see the seeded row)."
  echo "- Errors: $TOTAL_ERRORS of about $(fmt_int "$TOTAL_REQUESTS") requests"
  for s in "${!UNAVAILABLE[@]}"; do echo "- $s: ${UNAVAILABLE[$s]}; its column is empty"; done
  echo
  cat "$TABLE"
  echo
  echo "Targets, from this run: $t1; $t2; $t3."
  echo
  bench_notes tracking
  echo '<!-- bench:tracking:end -->'
} >"$SECTION"

bench_write_section tracking "$SECTION"
