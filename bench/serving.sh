#!/usr/bin/env bash
# bench/serving.sh: online scoring of one small model, served three ways and
# measured side by side in one run on one machine with one load generator
# (bench/serveload):
#
#   wharf-native  a Wharf online endpoint serving a `wharf_linear` model
#                 (coefficients in model.json, scored in the Go process)
#   wharf-pyfunc  a Wharf online endpoint serving an MLflow pyfunc model (a
#                 scikit-learn LinearRegression saved with mlflow.sklearn)
#                 in BENCH_WORKERS Python worker processes
#   mlflow        `mlflow models serve --env-manager local --workers
#                 BENCH_WORKERS` on the same MLflow model directory
#
# The model is the same in all three: prediction = 2*distance + 0.5*hour +
# 1 over columns distance and hour. Every request scores one row (3, 10)
# and every answer is checked to be 12. For each target and concurrency it
# runs closed-loop clients over keep-alive connections for BENCH_SECONDS
# after BENCH_WARMUP; for Wharf it also reads the server's own latency
# histogram (wharf_endpoint_request_duration_seconds on /metrics) before
# and after each measurement. At the end it prints a table and rewrites
# this benchmark's section of BENCHMARKS.md. Raw JSON lines go to
# bench/out/serving.jsonl.
#
# Settings (environment):
#   BENCH_SECONDS         measured seconds per target and concurrency (default 10)
#   BENCH_WARMUP          unmeasured warm-up seconds before each (default 2)
#   BENCH_CONCURRENCY     concurrencies to run (default "1 8 32")
#   BENCH_WORKERS         Wharf pyfunc instance_count = mlflow --workers (default 2)
#   BENCH_MAX_CONCURRENT  Wharf max_concurrent_requests_per_instance (default 64)
#   BENCH_TARGETS         which columns to run (default
#                         "wharf-native wharf-pyfunc mlflow")
#   BENCH_NO_WRITE=1      print the table but leave BENCHMARKS.md alone
#
# MLflow, scikit-learn and pandas come from PyPI into bench/.venv, pinned in
# bench/requirements-bench.txt; Wharf's pyfunc workers run on that venv's
# Python (`wharf server --python`).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
read -ra CONCURRENCY <<<"${BENCH_CONCURRENCY:-1 8 32}"
WORKERS=${BENCH_WORKERS:-2}
MAX_CONCURRENT=${BENCH_MAX_CONCURRENT:-64}
read -ra TARGETS <<<"${BENCH_TARGETS:-wharf-native wharf-pyfunc mlflow}"
ALL_TARGETS=(wharf-native wharf-pyfunc mlflow)
PY_PEERS=(mlflow scikit-learn pandas)
# The targets: throughput against `mlflow models serve` (Wharf native at
# its best concurrency, Wharf pyfunc at every concurrency above 1, where
# micro-batching works), and Wharf native's server-side p50.
TARGET_NATIVE_X=20
TARGET_NATIVE_P50_MS=0.2
TARGET_PYFUNC_X=3

for v in SECONDS_PER_RUN WORKERS MAX_CONCURRENT; do
  bench_require_posint "$v" "${!v}"
done
bench_require_whole BENCH_WARMUP "$WARMUP"
(( ${#CONCURRENCY[@]} > 0 )) || { echo "BENCH_CONCURRENCY is empty" >&2; exit 2; }
for c in "${CONCURRENCY[@]}"; do bench_require_posint BENCH_CONCURRENCY "$c"; done
bench_require_names BENCH_TARGETS target "${ALL_TARGETS[*]}" "${TARGETS[@]}"
for c in "${CONCURRENCY[@]}"; do
  if (( c > WORKERS * MAX_CONCURRENT )); then
    echo "concurrency $c is above BENCH_WORKERS × BENCH_MAX_CONCURRENT: Wharf would answer 429" >&2
    exit 2
  fi
done

bench_start_work wharf-serving
LOAD_START=$(bench_loadavg)

needs() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
needs_wharf() { needs wharf-native || needs wharf-pyfunc; }
needs_python() { needs wharf-pyfunc || needs mlflow; }

echo "==> building"
ensure_go
go build -o "$WORK/bin/serveload" ./bench/serveload
needs_wharf && go build -o "$WORK/bin/wharf" ./cmd/wharf

declare -A UNAVAILABLE=()
if needs_python && ! bench_pip_pins "${PY_PEERS[@]}"; then
  why="$(for p in "${PY_PEERS[@]}"; do printf '%s==%s ' "$p" "$(bench_pin "$p")"; done)could not be installed from PyPI here"
  needs wharf-pyfunc && UNAVAILABLE[wharf-pyfunc]=$why
  needs mlflow && UNAVAILABLE[mlflow]=$why
fi
has() { needs "$1" && [[ -z ${UNAVAILABLE[$1]:-} ]]; }

# ---- the models ----------------------------------------------------------

MODELS=$WORK/models
mkdir -p "$MODELS/native"
cat >"$MODELS/native/MLmodel" <<'EOF'
flavors:
  wharf_linear:
    data: model.json
signature:
  inputs: '[{"type": "double", "name": "distance", "required": true}, {"type": "double", "name": "hour", "required": true}]'
EOF
echo '{"columns": ["distance", "hour"], "coef": [2.0, 0.5], "intercept": 1.0}' >"$MODELS/native/model.json"

# The pyfunc model: four points on the plane, so that the fit is exact.
if has wharf-pyfunc || has mlflow; then
  echo "==> training the MLflow model"
  "$VENV/bin/python" - "$MODELS/pyfunc" <<'EOF'
import sys

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression

X = pd.DataFrame({"distance": [1.0, 2.0, 3.0, 4.0], "hour": [1.0, 5.0, 2.0, 8.0]})
y = 2 * X["distance"] + 0.5 * X["hour"] + 1
m = LinearRegression().fit(X, y)
mlflow.sklearn.save_model(m, sys.argv[1], signature=infer_signature(X, m.predict(X)))
got = m.predict(pd.DataFrame({"distance": [3.0], "hour": [10.0]}))[0]
assert abs(got - 12) < 1e-9, got
EOF
fi

# ---- measuring -----------------------------------------------------------

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/serving.jsonl
: >"$RAW"
declare -A R=()        # R[target/concurrency/field] = value
declare -A FAILED=()   # FAILED[target] = why
TOTAL_ERRORS=0
TOTAL_REQUESTS=0

# measure TARGET SERVELOAD-ARGS...: one cell per concurrency.
measure() {
  local target=$1 c line rc f
  shift
  for c in "${CONCURRENCY[@]}"; do
    rc=0
    "$WORK/bin/serveload" "$@" -concurrency "$c" -duration "${SECONDS_PER_RUN}s" -warmup "${WARMUP}s" \
      >"$WORK/line" &
    LOAD_PID=$!
    bench_wait_load || rc=$?
    line=$(cat "$WORK/line")
    if (( rc != 0 )) || [[ -z $line ]]; then
      FAILED[$target]="concurrency $c: serveload failed"
      return 1
    fi
    printf '{"target":"%s",%s\n' "$target" "${line#\{}" >>"$RAW"
    for f in requests errors rps p50_ms p99_ms server_requests server_mean_ms server_p50_ms server_p99_ms; do
      R[$target/$c/$f]=$(bench_jget "$line" "$f")
    done
    TOTAL_REQUESTS=$(( TOTAL_REQUESTS + ${R[$target/$c/requests]} ))
    TOTAL_ERRORS=$(( TOTAL_ERRORS + ${R[$target/$c/errors]} ))
    printf '    c=%-3s %9s req/s  p50 %7s ms  p99 %7s ms%s  errors %s\n' "$c" "${R[$target/$c/rps]}" \
      "${R[$target/$c/p50_ms]}" "${R[$target/$c/p99_ms]}" \
      "${R[$target/$c/server_mean_ms]:+  server mean ${R[$target/$c/server_mean_ms]} ms, p50 ~${R[$target/$c/server_p50_ms]} ms}" \
      "${R[$target/$c/errors]}"
  done
}

# deploy NAME MODEL-DIR: register the model as lin-NAME, create endpoint
# ep-NAME with deployment blue on it, and set SCORING_URI and KEY.
deploy() {
  local name=$1 dir=$WORK/wharf/$1
  mkdir -p "$dir"
  "$WORK/bin/wharf" ml model create --name "lin-$name" --path "$2" -w bench >/dev/null || return 1
  echo "name: ep-$name" >"$dir/ep.yml"
  cat >"$dir/dep.yml" <<EOF
name: blue
endpoint_name: ep-$name
model: azureml:lin-$name:1
instance_count: $WORKERS
request_settings:
  max_concurrent_requests_per_instance: $MAX_CONCURRENT
  request_timeout_ms: 5000
EOF
  "$WORK/bin/wharf" ml online-endpoint create -f "$dir/ep.yml" -w bench >/dev/null || return 1
  "$WORK/bin/wharf" ml online-deployment create -f "$dir/dep.yml" -w bench --all-traffic >/dev/null || return 1
  SCORING_URI=$("$WORK/bin/wharf" ml online-endpoint show -n "ep-$name" -w bench --query scoring_uri -o tsv) || return 1
  KEY=$("$WORK/bin/wharf" ml online-endpoint get-credentials -n "ep-$name" -w bench --query primaryKey -o tsv) || return 1
  [[ -n $SCORING_URI && -n $KEY ]]
}

run_wharf() {
  local t
  echo "==> wharf: starting the server"
  bench_wharf_start "wharf server" "$WORK/wharf" --python "$VENV/bin/python" || return 1
  echo "    $WHARF_SERVER_URL"
  bench_wharf_cli_env "$WORK/wharf/cli"
  # Endpoint series on /metrics are shown only to a caller allowed to read
  # metrics: the owner's token.
  bench_wharf_token || return 1
  "$WORK/bin/wharf" ml workspace create -n bench >/dev/null || return 1
  for t in wharf-native wharf-pyfunc; do
    has "$t" || continue
    echo "==> $t: deploying ($WORKERS instances)"
    if ! deploy "${t#wharf-}" "$MODELS/${t#wharf-}"; then
      FAILED[$t]="deployment failed"
      continue
    fi
    echo "==> $t: $SCORING_URI"
    measure "$t" -url "$SCORING_URI" -key "$KEY" -format azureml \
      -metrics "$WHARF_SERVER_URL/metrics" -metrics-token "$TOKEN" -labels "endpoint=\"ep-${t#wharf-}\"" || continue
  done
  echo "==> wharf: stopping the server"
  stop_server
}

run_mlflow() {
  local dir=$WORK/mlflow port i
  mkdir -p "$dir"
  port=$(bench_free_port)
  echo "==> mlflow: starting \`mlflow models serve\` ($WORKERS workers)"
  # MLflow starts `uvicorn` from PATH, so the venv's bin goes first.
  # uvicorn's per-request access log is switched off (UVICORN_ACCESS_LOG
  # is its --no-access-log): Wharf writes no line per request either.
  ( cd "$dir" && PATH=$VENV/bin:$PATH UVICORN_ACCESS_LOG=false exec setsid "$VENV/bin/mlflow" models serve \
      -m "$MODELS/pyfunc" --env-manager local -h 127.0.0.1 -p "$port" --workers "$WORKERS" ) \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  bench_wait_http mlflow "http://127.0.0.1:$port/ping" "$dir/server.log" || { FAILED[mlflow]="did not start"; return 1; }
  # /ping answers as soon as one worker is up; wait for all of them.
  for (( i = 0; i < 600; i++ )); do
    (( $(grep -c 'Application startup complete' "$dir/server.log" || true) >= WORKERS )) && break
    sleep 0.1
  done
  echo "==> mlflow: http://127.0.0.1:$port/invocations"
  measure mlflow -url "http://127.0.0.1:$port/invocations" -format mlflow || true
  echo "==> mlflow: stopping"
  stop_server
}

for t in "${TARGETS[@]}"; do
  [[ -n ${UNAVAILABLE[$t]:-} ]] && echo "==> $t: skipped (${UNAVAILABLE[$t]})"
done
if has wharf-native || has wharf-pyfunc; then
  run_wharf || { stop_server; FAILED[wharf-native]="the server did not start"; }
fi
if has mlflow; then
  run_mlflow || stop_server
fi
LOAD_END=$(bench_loadavg)

# ---- the table -----------------------------------------------------------

isnum() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
# cell TARGET KEY: the value, or why there is none.
cell() {
  local target=$1 v=${R[$1/$2]:-}
  if ! needs "$target"; then echo "not run"; return; fi
  if [[ -n ${UNAVAILABLE[$target]:-} ]]; then echo "n/a (not installable)"; return; fi
  [[ -n $v ]] && { echo "$v"; return; }
  [[ -n ${FAILED[$target]:-} ]] && { echo "failed"; return; }
  echo "–"
}
# fmt_int 12345.6 -> 12,346
fmt_int() {
  isnum "$1" || { echo "$1"; return; }
  printf '%.0f\n' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'
}
# fmt_ms 0.1234 -> 0.123; 12.34 -> 12.3
fmt_ms() {
  isnum "$1" || { echo "$1"; return; }
  awk -v x="$1" 'BEGIN { if (x >= 10) printf "%.1f\n", x; else if (x >= 1) printf "%.2f\n", x; else printf "%.3f\n", x }'
}
fmt_pair() {
  if isnum "$1" && isnum "$2"; then echo "$(fmt_ms "$1") / $(fmt_ms "$2")"; else echo "$1"; fi
}
# ratio A B: A / B, "–" when either is missing.
ratio() {
  if ! isnum "${1:-}" || ! isnum "${2:-}"; then echo "–"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1f×\n", a / b; else print "–" }'
}
# best TARGET: the highest req/s over the concurrencies.
best() {
  local c v b=""
  for c in "${CONCURRENCY[@]}"; do
    v=${R[$1/$c/rps]:-}
    isnum "$v" || continue
    if [[ -z $b ]] || awk -v a="$v" -v b="$b" 'BEGIN { exit !(a > b) }'; then b=$v; fi
  done
  echo "$b"
}
# best_cell TARGET: best, or why there is none.
best_cell() {
  local b
  b=$(best "$1")
  if [[ -n $b ]]; then fmt_int "$b"; else cell "$1" none; fi
}
clients() { if (( $1 == 1 )); then echo "1 client"; else echo "$1 clients"; fi; }

N=wharf-native P=wharf-pyfunc M=mlflow
TABLE=$WORK/table.md
{
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo '| measure | Wharf native | Wharf pyfunc | `mlflow models serve` | native ÷ mlflow | pyfunc ÷ mlflow |'
  echo '|---|--:|--:|--:|--:|--:|'
  for c in "${CONCURRENCY[@]}"; do
    echo "| req/s, $(clients "$c") | $(fmt_int "$(cell $N "$c/rps")") | $(fmt_int "$(cell $P "$c/rps")") | $(fmt_int "$(cell $M "$c/rps")") | $(ratio "${R[$N/$c/rps]:-}" "${R[$M/$c/rps]:-}") | $(ratio "${R[$P/$c/rps]:-}" "${R[$M/$c/rps]:-}") |"
    echo "| client p50 / p99 ms, $(clients "$c") | $(fmt_pair "$(cell $N "$c/p50_ms")" "$(cell $N "$c/p99_ms")") | $(fmt_pair "$(cell $P "$c/p50_ms")" "$(cell $P "$c/p99_ms")") | $(fmt_pair "$(cell $M "$c/p50_ms")" "$(cell $M "$c/p99_ms")") | $(ratio "${R[$M/$c/p50_ms]:-}" "${R[$N/$c/p50_ms]:-}") | $(ratio "${R[$M/$c/p50_ms]:-}" "${R[$P/$c/p50_ms]:-}") |"
    echo "| server-side mean / p50 ms, $(clients "$c") | $(fmt_pair "$(cell $N "$c/server_mean_ms")" "$(cell $N "$c/server_p50_ms")") | $(fmt_pair "$(cell $P "$c/server_mean_ms")" "$(cell $P "$c/server_p50_ms")") | – | – | – |"
  done
  echo "| best req/s over the concurrencies | $(best_cell $N) | $(best_cell $P) | $(best_cell $M) | $(ratio "$(best $N)" "$(best $M)") | $(ratio "$(best $P)" "$(best $M)") |"
} >"$TABLE"

# The targets, judged from this run's numbers: Wharf native's throughput
# as the best req/s of each over the concurrencies, Wharf pyfunc's at each
# concurrency above 1, Wharf native's server-side p50 at
# one client (no queueing) and at the highest concurrency.
verdict() { # verdict VALUE OP LIMIT UNIT
  isnum "${1:-}" || { echo "not measured"; return; }
  awk -v v="$1" -v op="$2" -v l="$3" -v u="$4" 'BEGIN {
    ok = (op == ">=") ? (v >= l) : (v < l)
    printf "%s (%s%s)\n", ok ? "**met**" : "**not met**", v, u }'
}
C1=${CONCURRENCY[0]} CN=${CONCURRENCY[-1]}
x_native=$(ratio "$(best $N)" "$(best $M)" | tr -d '×')
TARGET_LINE="Targets, from this run: Wharf native ≥ ${TARGET_NATIVE_X}× \`mlflow models serve\` throughput $(verdict "$x_native" ">=" "$TARGET_NATIVE_X" "×"), with server-side p50 < $TARGET_NATIVE_P50_MS ms $(verdict "${R[$N/$C1/server_p50_ms]:-}" "<" "$TARGET_NATIVE_P50_MS" " ms") at $(clients "$C1")"
(( CN != C1 )) && TARGET_LINE+=" and $(verdict "${R[$N/$CN/server_p50_ms]:-}" "<" "$TARGET_NATIVE_P50_MS" " ms") at $(clients "$CN")"
TARGET_LINE+="; Wharf pyfunc ≥ ${TARGET_PYFUNC_X}× \`mlflow models serve\` throughput"
sep=" at"
for c in "${CONCURRENCY[@]}"; do
  (( c > 1 )) || continue
  TARGET_LINE+="$sep $(clients "$c") $(verdict "$(ratio "${R[$P/$c/rps]:-}" "${R[$M/$c/rps]:-}" | tr -d '×')" ">=" "$TARGET_PYFUNC_X" "×")"
  sep=" and"
done
TARGET_LINE+="."

echo
cat "$TABLE"
echo
echo "$TARGET_LINE"
echo "errors: $TOTAL_ERRORS of $TOTAL_REQUESTS requests"
for t in "${!FAILED[@]}"; do echo "FAILED: $t: ${FAILED[$t]}" >&2; done
echo "load average: $LOAD_START at the start, $LOAD_END at the end"
echo "raw results: $RAW"

bench_stop_if_no_write
if (( ${#FAILED[@]} > 0 || TOTAL_ERRORS > 0 )); then
  echo "not writing BENCHMARKS.md: a target failed or answered with errors" >&2
  exit 1
fi

# ---- the section ---------------------------------------------------------

versions="Go: $(go env GOVERSION)"
needs_wharf && versions+="; Wharf: $(bench_wharf_rev)"
if has wharf-pyfunc || has mlflow; then
  versions+="; $("$VENV/bin/python" --version), MLflow $(bench_installed mlflow), scikit-learn $(bench_installed scikit-learn), pandas $(bench_installed pandas), uvicorn $(bench_installed uvicorn)"
fi

SECTION=$WORK/section.md
{
  echo '<!-- bench:serving:start -->'
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo '## serving: online scoring, Wharf native and pyfunc vs `mlflow models serve`'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/serving.sh` (settings: `BENCH_SECONDS`, `BENCH_WARMUP`, `BENCH_CONCURRENCY`, `BENCH_WORKERS`, `BENCH_MAX_CONCURRENT`, `BENCH_TARGETS`); load generator `bench/serveload`.'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine); load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end"
  echo "- Versions: $versions"
  echo "- Model: prediction = 2·distance + 0.5·hour + 1. Wharf native: a \`wharf_linear\` model (\`model.json\` with the coefficients), scored in the server's Go process. Wharf pyfunc and \`mlflow models serve\`: the same directory, a scikit-learn \`LinearRegression\` fitted to those coefficients and saved with \`mlflow.sklearn.save_model\` and a signature."
  echo "- Wharf: one server (SQLite store, \`--python\` the benchmark venv's), endpoints with key auth, deployments with \`instance_count: $WORKERS\`, \`max_concurrent_requests_per_instance: $MAX_CONCURRENT\` and micro-batching at its defaults (on for pyfunc, \`WHARF_MICRO_BATCH_MAX_WAIT_MS\` 1, \`WHARF_MICRO_BATCH_MAX_ROWS\` 512); requests \`POST\` to the scoring URI with \`Authorization: Bearer <key>\` and \`{\"input_data\": {\"columns\": [\"distance\", \"hour\"], \"index\": [0], \"data\": [[3.0, 10.0]]}}\`. MLflow: \`mlflow models serve -m DIR --env-manager local --workers $WORKERS\` (uvicorn, access log off), \`POST /invocations\` with \`{\"dataframe_split\": ...}\` of the same row."
  echo "- Each cell: ${SECONDS_PER_RUN} s measured after ${WARMUP} s warm-up, closed loop (each client one request in flight), one keep-alive HTTP client; every answer checked to be 12 (±1e-9), any other answer or status counted as an error. The load generator, Wharf and MLflow run on the same machine, one target after the other."
  echo "- Server-side: Wharf's \`wharf_endpoint_request_duration_seconds\` histogram (from the router receiving the request to the answer written), read before and after each cell: mean = sum ÷ count (exact); p50 interpolated linearly inside its bucket (bounds 0.1, 0.25, 0.5, 1, 2.5 ms, ...), as Prometheus' \`histogram_quantile\` does, so an estimate."
  echo "- Ratios: throughput Wharf ÷ MLflow, latency MLflow ÷ Wharf, so > 1 means Wharf is faster."
  echo "- Errors: $TOTAL_ERRORS of $(fmt_int "$TOTAL_REQUESTS") requests"
  for t in "${!UNAVAILABLE[@]}"; do echo "- $t: ${UNAVAILABLE[$t]}; its column is empty"; done
  echo
  cat "$TABLE"
  echo
  echo "$TARGET_LINE"
  echo
  bench_notes serving
  echo '<!-- bench:serving:end -->'
} >"$SECTION"

bench_write_section serving "$SECTION"
