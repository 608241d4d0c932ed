#!/usr/bin/env bash
# bench/ray.sh: pipeline overhead on Ray, measured side by side in one run
# on one machine with one helper (bench/pipeload), on three sides:
#
#   ray      Wharf, the pipelines on a Ray-backed compute cluster: one
#            driver job that stays, each step a Ray task
#   local    Wharf, the same pipelines on local compute
#   rayjobs  the same steps submitted straight to Ray, one Ray job per
#            step, through the Jobs API (what a step costs on Ray without
#            a driver that stays)
#
# Flows, of no-op steps (`true`), as in bench/pipeline.sh:
#   chain    BENCH_CHAIN steps, each after the one before (Wharf: each
#            reads the previous step's output)
#   fan-out  one step, BENCH_WIDTH parallel branches, one join (Wharf:
#            each branch reads the first step's output, the join every
#            branch's)
#
# One Ray head (ray start --head, from WHARF_TEST_RAY or .tools/) runs for
# the whole benchmark with BENCH_MAX_WORKERS CPUs, so that Ray runs as many
# steps at once as the local compute's --max-instances allows; the one-job-
# per-step side keeps as many jobs in flight. Wharf's runs are fresh
# (force_rerun), after one unmeasured warm-up each (on Ray, the warm-up
# also starts the driver). The script prints a table and rewrites this
# benchmark's section of BENCHMARKS.md. Raw JSON lines go to
# bench/out/ray.jsonl.
#
# Settings (environment):
#   BENCH_REPS           measured repetitions of each run (default 3)
#   BENCH_CHAIN          steps in the chain (default 4)
#   BENCH_WIDTH          branches in the fan-out (default 200)
#   BENCH_MAX_WORKERS    steps at once, every side (default 16)
#   BENCH_SIDES          which columns to run (default "ray local rayjobs")
#   BENCH_RAY            the ray program (default $WHARF_TEST_RAY, else
#                        .tools/ray-2.60.0/bin/ray as scripts/test keeps it)
#   BENCH_NO_WRITE=1     print the table but leave BENCHMARKS.md alone
#   BENCH_WHARF_SERVER_FLAGS extra `wharf server` flags
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPS=${BENCH_REPS:-3}
CHAIN=${BENCH_CHAIN:-4}
WIDTH=${BENCH_WIDTH:-200}
WORKERS=${BENCH_MAX_WORKERS:-16}
read -ra SIDES <<<"${BENCH_SIDES:-ray local rayjobs}"
RAY=${BENCH_RAY:-${WHARF_TEST_RAY:-$ROOT/.tools/ray-2.60.0/bin/ray}}
# Targets: the fan-out on Ray-backed compute at least FAN_TARGET times as
# fast as one Ray job per step; a chain step on Ray-backed compute at most
# STEP_TARGET_MS slower than the same step on local compute.
FAN_TARGET=5
STEP_TARGET_MS=100

for v in REPS WORKERS; do
  bench_require_posint "$v" "${!v}"
done
[[ $CHAIN =~ ^[0-9]+$ && $CHAIN -ge 2 ]] || { echo "BENCH_CHAIN must be an integer >= 2" >&2; exit 2; }
[[ $WIDTH =~ ^[0-9]+$ && $WIDTH -ge 2 && $WIDTH -le 9999 ]] || { echo "BENCH_WIDTH must be an integer from 2 to 9999" >&2; exit 2; }
bench_require_names BENCH_SIDES side "ray local rayjobs" "${SIDES[@]}"
[[ -x $RAY ]] || { echo "no ray program at $RAY (./scripts/test installs it; or set BENCH_RAY)" >&2; exit 2; }

bench_start_work wharf-ray
LOAD_START=$(bench_loadavg)
needs() { [[ " ${SIDES[*]} " == *" $1 "* ]]; }

# ---- the Ray head --------------------------------------------------------

RAY_PGID="" RAY_TMP="" RAY_URL=""
# stop_ray kills the head's process group: `ray stop` would stop every
# Ray head of the user, and SIGTERM drains for up to 30 s.
stop_ray() {
  if [[ -n $RAY_PGID ]]; then
    { kill -KILL -- "-$RAY_PGID"; wait "$RAY_PGID"; } 2>/dev/null
  fi
  RAY_PGID=""
  [[ -n $RAY_TMP ]] && rm -rf -- "$RAY_TMP"
  RAY_TMP=""
}
BENCH_EXIT_HOOKS+=(stop_ray)

# start_ray: a head with WORKERS CPUs on free ports, its temp dir short
# (Ray's unix sockets live under it), the ray venv first on PATH so that
# jobs' `python` imports ray; sets RAY_URL, its dashboard.
start_ray() {
  local port dash agent client i
  RAY_TMP=$(mktemp -d /tmp/rayb.XXXX)
  port=$(bench_free_port) dash=$(bench_free_port) agent=$(bench_free_port) client=$(bench_free_port)
  PATH=$(dirname "$RAY"):$PATH setsid "$RAY" start --head --block --num-cpus "$WORKERS" --port "$port" \
    --dashboard-host 127.0.0.1 --dashboard-port "$dash" --dashboard-agent-listen-port "$agent" \
    --ray-client-server-port "$client" --include-dashboard=true --min-worker-port 0 --max-worker-port 0 \
    --object-store-memory $(( 200 << 20 )) --temp-dir "$RAY_TMP" --disable-usage-stats \
    >"$WORK/ray.log" 2>&1 &
  RAY_PGID=$!
  RAY_URL=http://127.0.0.1:$dash
  for (( i = 0; i < 900; i++ )); do
    kill -0 "$RAY_PGID" 2>/dev/null || { tail -n 40 "$WORK/ray.log" >&2; echo "the Ray head exited" >&2; return 1; }
    # The Jobs API answers before the agent that runs jobs listens.
    if curl -fsS -o /dev/null --max-time 2 "$RAY_URL/api/version" 2>/dev/null &&
      (exec 3<>"/dev/tcp/127.0.0.1/$agent") 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  tail -n 40 "$WORK/ray.log" >&2
  echo "the Ray head's Jobs API did not answer within 180 s" >&2
  return 1
}

echo "==> building"
ensure_go
go build -o "$WORK/bin/pipeload" ./bench/pipeload
go build -o "$WORK/bin/wharf" ./cmd/wharf

echo "==> starting a Ray head ($WORKERS CPUs)"
start_ray
echo "    $RAY_URL ($("$RAY" --version 2>/dev/null | head -n 1))"

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/ray.jsonl
: >"$RAW"
declare -A R=()      # R[side/flow/field] = value
declare -A FAILED=() # FAILED[side] = why

# measure SIDE FLOW ARGS...: run pipeload in the background (so a signal
# reaches the trap at once), keep its summary line's fields in R.
measure() {
  local side=$1 flow=$2 rc=0 line f
  shift 2
  "$WORK/bin/pipeload" "$@" >"$WORK/line" &
  LOAD_PID=$!
  bench_wait_load || rc=$?
  line=$(cat "$WORK/line")
  if (( rc != 0 )) || [[ -z $line ]]; then
    FAILED[$side]="$flow: pipeload failed"
    return 1
  fi
  printf '{"summary":true,"side":"%s",%s\n' "$side" "${line#\{}" >>"$RAW"
  for f in reps steps wall_ms wall_min_ms wall_max_ms server_ms ready_p50_ms ready_p95_ms \
    attempt_p50_ms attempt_p95_ms proc_p50_ms beyond_ms task_p50_ms task_p95_ms; do
    R[$side/$flow/$f]=$(bench_jget "$line" "$f")
  done
}

# ---- Wharf: Ray-backed and local compute, one server ---------------------

WHARF_UP=""
start_wharf() {
  [[ -n $WHARF_UP ]] && return 0
  echo "==> wharf: starting the server"
  # shellcheck disable=SC2086  # flags split on purpose
  bench_wharf_start "wharf server" "$WORK/wharf" ${BENCH_WHARF_SERVER_FLAGS:-} || return 1
  bench_wharf_cli_env "$WORK/wharf/cli"
  "$WORK/bin/wharf" ml workspace create -n bench >/dev/null || return 1
  "$WORK/bin/wharf" ml compute create -n cpu-cluster --max-instances "$WORKERS" -w bench >/dev/null || return 1
  "$WORK/bin/wharf" ml compute attach --type ray --address "$RAY_URL" -n ray-cluster -w bench >/dev/null || return 1
  echo "    $WHARF_URL"
  WHARF_UP=1
}

# run_wharf SIDE COMPUTE
run_wharf() {
  local side=$1 compute=$2 flow
  start_wharf || { FAILED[$side]="the server did not start"; return 1; }
  chain_pipeline true "$CHAIN" "$compute" >"$WORK/chain-$side.yml"
  fanout_pipeline true "$WIDTH" "$compute" >"$WORK/fanout-$side.yml"
  for flow in chain fanout; do
    echo "==> wharf on $compute: $flow"
    measure "$side" "$flow" wharf -wharf "$WORK/bin/wharf" -file "$WORK/$flow-$side.yml" \
      -workspace bench -reps "$REPS" -warmup 1 -slots "$WORKERS" -expect fresh \
      -flow "$flow" -raw "$RAW" || return 1
  done
}
run_ray() { run_wharf ray ray-cluster; }
run_local() { run_wharf local cpu-cluster; }

# ---- one Ray job per step ------------------------------------------------

run_rayjobs() {
  local flow steps
  for flow in chain fanout; do
    steps=$CHAIN
    [[ $flow == fanout ]] && steps=$WIDTH
    echo "==> one Ray job per step: $flow"
    measure rayjobs "$flow" rayjobs -address "$RAY_URL" -flow "$flow" -steps "$steps" \
      -slots "$WORKERS" -reps "$REPS" -warmup 1 -raw "$RAW" || return 1
  done
}

for side in "${SIDES[@]}"; do
  "run_$side" || echo "==> $side: FAILED (${FAILED[$side]:-})" >&2
done
stop_server
LOAD_END=$(bench_loadavg)

# ---- the table -----------------------------------------------------------

v() { echo "${R[$1]:-}"; }
isnum() { [[ $1 =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; }
# fmt_ms 1234.5 -> "1,235 ms"; 12.34 -> "12.3 ms"; 1.234 -> "1.23 ms".
fmt_ms() {
  isnum "${1:-}" || { echo "–"; return; }
  awk -v x="$1" 'BEGIN {
    a = x < 0 ? -x : x; sign = x < 0 ? "−" : ""
    if (a >= 100) {
      s = sprintf("%.0f", a); t = ""
      while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) }
      print sign s t " ms"
    }
    else if (a >= 10) printf "%s%.1f ms\n", sign, a
    else printf "%s%.2f ms\n", sign, a }'
}
fmt_wall() {
  local m=${R[$1/wall_ms]:-} lo=${R[$1/wall_min_ms]:-} hi=${R[$1/wall_max_ms]:-}
  isnum "$m" || { echo "–"; return; }
  echo "$(fmt_ms "$m") ($(fmt_ms "$lo" | sed 's/ ms//')–$(fmt_ms "$hi"))"
}
fmt_pair() {
  if isnum "${1:-}" && isnum "${2:-}"; then echo "$(fmt_ms "$1") / $(fmt_ms "$2")"; else echo "–"; fi
}
ratio() {
  if ! isnum "${1:-}" || ! isnum "${2:-}"; then echo "–"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1f×\n", a / b; else print "–" }'
}
# calc EXPR A B: awk arithmetic on two numbers, empty when one is missing.
calc() {
  if isnum "${2:-}" && isnum "${3:-}"; then awk -v a="$2" -v b="$3" "BEGIN { printf \"%.2f\\n\", ($1) }"; else echo ""; fi
}

# Per chain step: Wharf's job ended − created, the one-job side's wall
# time, each ÷ CHAIN.
RAY_STEP=$(calc 'a / b' "$(v ray/chain/server_ms)" "$CHAIN")
LOCAL_STEP=$(calc 'a / b' "$(v local/chain/server_ms)" "$CHAIN")
JOBS_STEP=$(calc 'a / b' "$(v rayjobs/chain/wall_ms)" "$CHAIN")
RAY_EXTRA=$(calc 'a - b' "$RAY_STEP" "$LOCAL_STEP")
FAN_RATIO=$(ratio "$(v rayjobs/fanout/wall_ms)" "$(v ray/fanout/wall_ms)")
TABLE=$WORK/table.md
{
  echo '| measure | Wharf, Ray-backed compute | Wharf, local compute | one Ray job per step | one job per step ÷ Ray-backed | Ray-backed ÷ local |'
  echo '|---|--:|--:|--:|--:|--:|'
  echo "| chain of $CHAIN no-op steps: submit → done, median (min–max) | $(fmt_wall ray/chain) | $(fmt_wall local/chain) | $(fmt_wall rayjobs/chain) | $(ratio "$(v rayjobs/chain/wall_ms)" "$(v ray/chain/wall_ms)") | $(ratio "$(v ray/chain/wall_ms)" "$(v local/chain/wall_ms)") |"
  echo "| fan-out 1 + $WIDTH + 1 steps, $WORKERS at once: submit → done, median (min–max) | $(fmt_wall ray/fanout) | $(fmt_wall local/fanout) | $(fmt_wall rayjobs/fanout) | $FAN_RATIO | $(ratio "$(v ray/fanout/wall_ms)" "$(v local/fanout/wall_ms)") |"
  echo "| chain, per step: Wharf (job ended − created) ÷ $CHAIN; one job per step: wall ÷ $CHAIN | $(fmt_ms "$RAY_STEP") | $(fmt_ms "$LOCAL_STEP") | $(fmt_ms "$JOBS_STEP") | $(ratio "$JOBS_STEP" "$RAY_STEP") | $(ratio "$RAY_STEP" "$LOCAL_STEP") |"
  echo "| chain, per step on Ray-backed compute beyond the same step on local compute | $(fmt_ms "$RAY_EXTRA") | – | – | – | – |"
  echo "| chain, step to step: upstream ended → downstream started, p50 / p95 | $(fmt_pair "$(v ray/chain/ready_p50_ms)" "$(v ray/chain/ready_p95_ms)") | $(fmt_pair "$(v local/chain/ready_p50_ms)" "$(v local/chain/ready_p95_ms)") | – | – | – |"
  echo "| fan-out, each step: Wharf attempt started → ended; one job per step: submitted → seen ended, p50 / p95 | $(fmt_pair "$(v ray/fanout/attempt_p50_ms)" "$(v ray/fanout/attempt_p95_ms)") | $(fmt_pair "$(v local/fanout/attempt_p50_ms)" "$(v local/fanout/attempt_p95_ms)") | $(fmt_pair "$(v rayjobs/fanout/task_p50_ms)" "$(v rayjobs/fanout/task_p95_ms)") | – | – |"
} >"$TABLE"

verdict() { # verdict MET: "met" or "not met", "–" without numbers
  case $1 in 1) echo met ;; 0) echo "not met" ;; *) echo "–" ;; esac
}
FAN_MET=$(calc 'a >= b * '"$FAN_TARGET"' ? 1 : 0' "$(v rayjobs/fanout/wall_ms)" "$(v ray/fanout/wall_ms)" | cut -d. -f1)
STEP_MET=$(calc 'a <= b ? 1 : 0' "$RAY_EXTRA" "$STEP_TARGET_MS" | cut -d. -f1)
TARGET_LINE="Targets: fan-out on Ray-backed compute ≥ ${FAN_TARGET}× as fast as one Ray job per step: $FAN_RATIO, $(verdict "$FAN_MET"); a chain step on Ray-backed compute ≤ $STEP_TARGET_MS ms beyond the same step on local compute: $(fmt_ms "$RAY_EXTRA"), $(verdict "$STEP_MET")."

echo
cat "$TABLE"
echo
echo "$TARGET_LINE"
echo "load average: $LOAD_START at the start, $LOAD_END at the end"
for side in "${!FAILED[@]}"; do echo "$side: FAILED (${FAILED[$side]})"; done

bench_stop_if_no_write

SECTION=$WORK/section.md
{
  echo '<!-- bench:ray:start -->'
  echo '## Pipelines on Ray (`bench/ray.sh`)'
  echo
  echo "- Machine: $(bench_machine); load average $LOAD_START at the start, $LOAD_END at the end."
  echo "- Wharf $(bench_wharf_rev); Ray $("$RAY" --version 2>/dev/null | head -n 1 | awk '{ print $NF }'), one head with $WORKERS CPUs for every side."
  echo "- Each side: $REPS measured runs of each flow after one warm-up (on Ray-backed compute the warm-up also starts the driver). Medians are nearest-rank."
  echo "- Wharf: one fresh server (SQLite store) for both computes; fresh runs (\`force_rerun: true\`); every step reads its upstreams' outputs, as in \`bench/pipeline.sh\`. Submit → done is from just before \`wharf ml job create\` to the job's \`ended_at\`."
  echo "- One Ray job per step: \`POST /api/jobs/\` with entrypoint \`true\`, then \`GET /api/jobs/{id}\` every 10 ms until it ends; the next chain job, or the join, is submitted when the jobs before it succeeded; at most $WORKERS branch jobs in flight. No data passes between these jobs."
  for side in "${!FAILED[@]}"; do echo "- $side: FAILED (${FAILED[$side]}); its column is empty"; done
  echo
  cat "$TABLE"
  echo
  echo "$TARGET_LINE"
  echo
  bench_notes ray
  echo '<!-- bench:ray:end -->'
} >"$SECTION"

bench_write_section ray "$SECTION"
