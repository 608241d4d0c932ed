#!/usr/bin/env bash
# bench/pipeline.sh: pipeline orchestration overhead, Wharf's local executor
# vs Metaflow's local runtime, on equivalent flows of no-op steps, measured
# side by side in one run on one machine with one helper (bench/pipeload).
#
#   chain    BENCH_CHAIN no-op steps, each after the one before (Wharf: each
#            step reads the previous step's output; Metaflow: start, ...,
#            end, each calling only self.next)
#   fan-out  one start step, BENCH_WIDTH parallel no-op branches, one join
#            (Wharf: each branch reads start's output, the join reads every
#            branch's output; Metaflow: foreach over BENCH_WIDTH items, a
#            join step, and the end step Metaflow requires)
#   wide     the same fan-out with BENCH_WIDE branches, fresh runs only
#
# Wharf's compute allows BENCH_MAX_WORKERS steps at once (--max-instances)
# and Metaflow runs with --max-workers BENCH_MAX_WORKERS. Wharf's fresh runs
# set force_rerun; the same pipelines are then resubmitted without it, so
# every step is reused from Wharf's cache. Per-step timings come from the
# job's stored data (`wharf ml job show -o json`) and Metaflow's task lines.
# The script prints a table and rewrites this benchmark's section of
# BENCHMARKS.md. Raw JSON lines go to bench/out/pipeline.jsonl.
#
# Settings (environment):
#   BENCH_REPS               measured repetitions of each Wharf run and of
#                            Metaflow's chain (default 5)
#   BENCH_METAFLOW_FAN_REPS  measured repetitions of Metaflow's fan-out
#                            (default 3; each takes about a minute on 2 cores)
#   BENCH_CHAIN              steps in the chain (default 4)
#   BENCH_WIDTH              branches in the fan-out (default 200)
#   BENCH_WIDE               branches in the wide fan-out (default 1000; 0
#                            leaves it out)
#   BENCH_WIDE_REPS          measured repetitions of Wharf's wide fan-out
#                            (default 3)
#   BENCH_METAFLOW_WIDE_REPS measured repetitions of Metaflow's wide fan-out
#                            (default 1, about 5 minutes on 2 cores; 0
#                            leaves it out)
#   BENCH_MAX_WORKERS        steps at once, both tools (default 16)
#   BENCH_TOOLS              which columns to run (default "wharf metaflow")
#   BENCH_NO_WRITE=1         print the table but leave BENCHMARKS.md alone
#   BENCH_WHARF_SERVER_FLAGS extra `wharf server` flags, e.g.
#                            --unsafe-run-steps-as-server-user to measure
#                            steps without their sandboxes
#
# Metaflow comes from PyPI into bench/.venv, pinned in
# bench/requirements-bench.txt.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPS=${BENCH_REPS:-5}
MF_FAN_REPS=${BENCH_METAFLOW_FAN_REPS:-3}
CHAIN=${BENCH_CHAIN:-4}
WIDTH=${BENCH_WIDTH:-200}
WIDE=${BENCH_WIDE:-1000}
WIDE_REPS=${BENCH_WIDE_REPS:-3}
MF_WIDE_REPS=${BENCH_METAFLOW_WIDE_REPS:-1}
WORKERS=${BENCH_MAX_WORKERS:-16}
read -ra TOOLS <<<"${BENCH_TOOLS:-wharf metaflow}"
ALL_TOOLS=(wharf metaflow)
# Targets for Wharf on the local executor: step to step ≤ TARGET_MS, and a
# no-op step's whole cost beyond its own process ≤ BEYOND_MS.
TARGET_MS=10
BEYOND_MS=5

for v in REPS MF_FAN_REPS WORKERS WIDE_REPS; do
  bench_require_posint "$v" "${!v}"
done
[[ $MF_WIDE_REPS =~ ^[0-9]+$ ]] || { echo "BENCH_METAFLOW_WIDE_REPS must be a whole number" >&2; exit 2; }
[[ $CHAIN =~ ^[0-9]+$ && $CHAIN -ge 2 ]] || { echo "BENCH_CHAIN must be an integer >= 2" >&2; exit 2; }
[[ $WIDTH =~ ^[0-9]+$ && $WIDTH -ge 2 && $WIDTH -le 9999 ]] || { echo "BENCH_WIDTH must be an integer from 2 to 9999" >&2; exit 2; }
[[ $WIDE =~ ^[0-9]+$ && ( $WIDE -eq 0 || ( $WIDE -ge 2 && $WIDE -le 9999 ) ) ]] ||
  { echo "BENCH_WIDE must be 0 or an integer from 2 to 9999" >&2; exit 2; }
bench_require_names BENCH_TOOLS tool "${ALL_TOOLS[*]}" "${TOOLS[@]}"

# pipeload puts each Metaflow run in a process group of its own and kills
# it when pipeload gets SIGTERM, which the exit trap sends.
bench_start_work wharf-pipeline
LOAD_START=$(bench_loadavg)

needs() { [[ " ${TOOLS[*]} " == *" $1 "* ]]; }

echo "==> building"
ensure_go
go build -o "$WORK/bin/pipeload" ./bench/pipeload
needs wharf && go build -o "$WORK/bin/wharf" ./cmd/wharf

# Metaflow: only its pinned line is installed (the other peers in the file
# belong to bench/tracking.sh), and only when the venv lacks that version.
declare -A UNAVAILABLE=()
MF_PIN=$(bench_pin metaflow)
if needs metaflow; then
  [[ -n $MF_PIN ]] || { echo "no metaflow== line in $REQS" >&2; exit 2; }
  bench_pip_pins metaflow || UNAVAILABLE[metaflow]="metaflow==$MF_PIN could not be installed from PyPI here"
fi
has() { needs "$1" && [[ -z ${UNAVAILABLE[$1]:-} ]]; }

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/pipeline.jsonl
: >"$RAW"
declare -A R=()        # R[tool/flow/mode/field] = value
declare -A FAILED=()   # FAILED[tool] = why

# measure TOOL FLOW MODE ARGS...: run pipeload in the background (so a
# signal reaches the trap at once), keep its summary line's fields in R.
measure() {
  local tool=$1 flow=$2 mode=$3 rc=0 line f
  shift 3
  "$WORK/bin/pipeload" "$@" >"$WORK/line" &
  LOAD_PID=$!
  bench_wait_load || rc=$?
  line=$(cat "$WORK/line")
  if (( rc != 0 )) || [[ -z $line ]]; then
    FAILED[$tool]="$flow ($mode): pipeload failed"
    return 1
  fi
  printf '{"summary":true,%s\n' "${line#\{}" >>"$RAW"
  for f in reps steps wall_ms wall_min_ms wall_max_ms cli_ms server_ms submit_ms first_ms \
    ready_p50_ms ready_p95_ms ready_n join_ms attempt_p50_ms attempt_p95_ms \
    proc_p50_ms proc_p95_ms beyond_ms task_p50_ms task_p95_ms gap_p50_ms gap_p95_ms; do
    R[$tool/$flow/$mode/$f]=$(bench_jget "$line" "$f")
  done
}

# ---- Wharf ---------------------------------------------------------------

write_pipelines() {
  local force
  for force in true false; do
    chain_pipeline "$force" "$CHAIN" >"$WORK/chain-$force.yml"
    fanout_pipeline "$force" "$WIDTH" >"$WORK/fanout-$force.yml"
  done
  (( WIDE == 0 )) || fanout_pipeline true "$WIDE" >"$WORK/wide-true.yml"
}

# start_wharf: a fresh server (fresh data dir, a port the kernel picks) and
# the CLI's environment pointing at it as its owner.
start_wharf() {
  # shellcheck disable=SC2086  # flags split on purpose
  bench_wharf_start "wharf server" "$WORK/wharf" ${BENCH_WHARF_SERVER_FLAGS:-} || return 1
  bench_wharf_cli_env "$WORK/wharf/cli"
  "$WORK/bin/wharf" ml workspace create -n bench >/dev/null || return 1
  "$WORK/bin/wharf" ml compute create -n cpu-cluster --max-instances "$WORKERS" -w bench >/dev/null || return 1
}

run_wharf() {
  local flow mode force expect
  write_pipelines
  echo "==> wharf: starting the server"
  start_wharf || { FAILED[wharf]="the server did not start"; return 1; }
  echo "    $WHARF_URL"
  for flow in chain fanout; do
    for mode in fresh reused; do
      force=true expect=fresh
      [[ $mode == reused ]] && force=false expect=reused
      # One unmeasured submission first: for fresh runs a warm-up, for
      # reused runs the one that fills the cache.
      echo "==> wharf: $flow, $mode"
      measure wharf "$flow" "$mode" wharf -wharf "$WORK/bin/wharf" -file "$WORK/$flow-$force.yml" \
        -workspace bench -reps "$REPS" -warmup 1 -slots "$WORKERS" -expect "$expect" \
        -flow "$flow" -raw "$RAW" || return 1
    done
  done
  if (( WIDE > 0 )); then
    # Fresh runs only; the server is warm from the runs above.
    echo "==> wharf: wide fan-out ($WIDE branches), fresh"
    measure wharf wide fresh wharf -wharf "$WORK/bin/wharf" -file "$WORK/wide-true.yml" \
      -workspace bench -reps "$WIDE_REPS" -slots "$WORKERS" -expect fresh -flow wide -raw "$RAW" || return 1
  fi
  echo "==> wharf: stopping the server"
  stop_server
}

# ---- Metaflow ------------------------------------------------------------

write_flows() {
  local dir=$WORK/metaflow i prev
  mkdir -p "$dir/home" "$dir/ds"
  {
    printf 'from metaflow import FlowSpec, step\n\n\nclass ChainFlow(FlowSpec):\n'
    prev=start
    for (( i = 2; i < CHAIN; i++ )); do
      printf '    @step\n    def %s(self):\n        self.next(self.s%d)\n\n' "$prev" "$i"
      prev=s$i
    done
    printf '    @step\n    def %s(self):\n        self.next(self.end)\n\n' "$prev"
    printf '    @step\n    def end(self):\n        pass\n\n\n'
    printf 'if __name__ == "__main__":\n    ChainFlow()\n'
  } >"$dir/chainflow.py"
  fanout_flow "$WIDTH" >"$dir/fanoutflow.py"
  fanout_flow "$WIDE" >"$dir/wideflow.py"
}

# fanout_flow WIDTH: Metaflow's fan-out over WIDTH items.
fanout_flow() {
  cat <<EOF
from metaflow import FlowSpec, step


class FanoutFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range($1))
        self.next(self.branch, foreach="items")

    @step
    def branch(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FanoutFlow()
EOF
}

run_metaflow() {
  local dir=$WORK/metaflow
  write_flows
  # Local metadata and datastore in the throwaway dir; USERNAME so that it
  # never asks who is running.
  export METAFLOW_HOME=$dir/home METAFLOW_DATASTORE_SYSROOT_LOCAL=$dir/ds USERNAME=bench \
    METAFLOW_DEFAULT_METADATA=local METAFLOW_DEFAULT_DATASTORE=local
  local -a run=(--no-pylint run --max-workers "$WORKERS")
  echo "==> metaflow: chain"
  ( cd "$dir" && exec "$WORK/bin/pipeload" metaflow -reps "$REPS" -warmup 1 -flow chain \
      -log "$dir/chain.log" -raw "$RAW" -- "$VENV/bin/python" chainflow.py "${run[@]}" ) >"$WORK/line" &
  LOAD_PID=$!
  metaflow_result chain || return 1
  echo "==> metaflow: fanout"
  ( cd "$dir" && exec "$WORK/bin/pipeload" metaflow -reps "$MF_FAN_REPS" -flow fanout \
      -log "$dir/fanout.log" -raw "$RAW" -- "$VENV/bin/python" fanoutflow.py "${run[@]}" \
      --max-num-splits "$WIDTH" ) >"$WORK/line" &
  LOAD_PID=$!
  metaflow_result fanout || return 1
  if (( WIDE > 0 && MF_WIDE_REPS > 0 )); then
    echo "==> metaflow: wide fan-out ($WIDE branches)"
    ( cd "$dir" && exec "$WORK/bin/pipeload" metaflow -reps "$MF_WIDE_REPS" -flow wide \
        -log "$dir/wide.log" -raw "$RAW" -- "$VENV/bin/python" wideflow.py "${run[@]}" \
        --max-num-splits "$WIDE" ) >"$WORK/line" &
    LOAD_PID=$!
    metaflow_result wide || return 1
  fi
}

# metaflow_result FLOW: wait for the pipeload started in the background.
metaflow_result() {
  local flow=$1 rc=0 line f
  bench_wait_load || rc=$?
  line=$(cat "$WORK/line")
  if (( rc != 0 )) || [[ -z $line ]]; then
    FAILED[metaflow]="$flow: pipeload failed"
    return 1
  fi
  printf '{"summary":true,%s\n' "${line#\{}" >>"$RAW"
  for f in reps steps wall_ms wall_min_ms wall_max_ms task_p50_ms task_p95_ms gap_p50_ms gap_p95_ms; do
    R[metaflow/$flow/fresh/$f]=$(bench_jget "$line" "$f")
  done
}

for tool in "${TOOLS[@]}"; do
  if [[ -n ${UNAVAILABLE[$tool]:-} ]]; then
    echo "==> $tool: skipped (${UNAVAILABLE[$tool]})"
    continue
  fi
  "run_$tool" || { stop_server; echo "==> $tool: FAILED (${FAILED[$tool]:-})" >&2; }
done
LOAD_END=$(bench_loadavg)

# ---- the table -----------------------------------------------------------

# v TOOL/FLOW/MODE/FIELD: a value, or empty.
v() { echo "${R[$1]:-}"; }
isnum() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
# fmt_ms 1234.5 -> "1,235 ms"; 12.34 -> "12.3 ms"; 1.234 -> "1.23 ms".
fmt_ms() {
  isnum "${1:-}" || { echo "–"; return; }
  awk -v x="$1" 'BEGIN {
    if (x >= 100) {
      s = sprintf("%.0f", x); t = ""
      while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) }
      print s t " ms"
    }
    else if (x >= 10) printf "%.1f ms\n", x
    else printf "%.2f ms\n", x }'
}
fmt_pair() {
  if isnum "${1:-}" && isnum "${2:-}"; then echo "$(fmt_ms "$1") / $(fmt_ms "$2")"; else echo "–"; fi
}
# fmt_wall KEY: the median with the range of the repetitions.
fmt_wall() {
  local m=${R[$1/wall_ms]:-} lo=${R[$1/wall_min_ms]:-} hi=${R[$1/wall_max_ms]:-}
  isnum "$m" || { echo "–"; return; }
  echo "$(fmt_ms "$m") ($(fmt_ms "$lo" | sed 's/ ms//')–$(fmt_ms "$hi"))"
}
# ratio A B: A / B, "–" when either is missing.
ratio() {
  if ! isnum "${1:-}" || ! isnum "${2:-}"; then echo "–"; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.1f×\n", a / b; else print "–" }'
}
# div A B: A / B to two decimals, empty when A is missing.
div() {
  if isnum "${1:-}"; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'; else echo ""; fi
}

W=wharf M=metaflow
WC=$(v $W/chain/fresh/server_ms) MC=$(v $M/chain/fresh/wall_ms)
W_STEP=$(div "$WC" "$CHAIN") M_STEP=$(div "$MC" "$CHAIN")
MF_FAN_TASKS=$(v $M/fanout/fresh/steps)
TABLE=$WORK/table.md
{
  echo '| measure | Wharf | Metaflow | Metaflow ÷ Wharf |'
  echo '|---|--:|--:|--:|'
  echo "| chain of $CHAIN no-op steps: submit → done, median (min–max) | $(fmt_wall $W/chain/fresh) | $(fmt_wall $M/chain/fresh) | $(ratio "$(v $M/chain/fresh/wall_ms)" "$(v $W/chain/fresh/wall_ms)") |"
  echo "| fan-out 1 + $WIDTH + 1 steps, $WORKERS at once: submit → done, median (min–max) | $(fmt_wall $W/fanout/fresh) | $(fmt_wall $M/fanout/fresh) | $(ratio "$(v $M/fanout/fresh/wall_ms)" "$(v $W/fanout/fresh/wall_ms)") |"
  if (( WIDE > 0 )); then
    echo "| fan-out 1 + $WIDE + 1 steps, $WORKERS at once: submit → done, median (min–max) | $(fmt_wall $W/wide/fresh) | $(fmt_wall $M/wide/fresh) | $(ratio "$(v $M/wide/fresh/wall_ms)" "$(v $W/wide/fresh/wall_ms)") |"
  fi
  echo "| chain resubmitted, every step reused from Wharf's cache | $(fmt_wall $W/chain/reused) | – | – |"
  echo "| fan-out resubmitted, every step reused from Wharf's cache | $(fmt_wall $W/fanout/reused) | – | – |"
  echo "| chain: submit → \`wharf ml job stream\` exits (polls every 300 ms) | $(fmt_ms "$(v $W/chain/fresh/cli_ms)") | – | – |"
  echo "| fan-out: submit → \`wharf ml job stream\` exits | $(fmt_ms "$(v $W/fanout/fresh/cli_ms)") | – | – |"
  echo "| chain, per step: Wharf (job ended − created) ÷ $CHAIN; Metaflow run ÷ $CHAIN | $(fmt_ms "$W_STEP") | $(fmt_ms "$M_STEP") | $(ratio "$M_STEP" "$W_STEP") |"
  echo "| chain, per step beyond its process: (job ended − created − the processes' own time) ÷ $CHAIN, median | $(fmt_ms "$(v $W/chain/fresh/beyond_ms)") | – | – |"
  echo "| chain, step to step: upstream ended → downstream started, p50 / p95 | $(fmt_pair "$(v $W/chain/fresh/ready_p50_ms)" "$(v $W/chain/fresh/ready_p95_ms)") | $(fmt_pair "$(v $M/chain/fresh/gap_p50_ms)" "$(v $M/chain/fresh/gap_p95_ms)") | – |"
  echo "| fan-out, step to step: ready (upstreams ended, a slot free) → started, p50 / p95 | $(fmt_pair "$(v $W/fanout/fresh/ready_p50_ms)" "$(v $W/fanout/fresh/ready_p95_ms)") | – | – |"
  if (( WIDE > 0 )); then
    echo "| fan-out of $WIDE, step to step: ready → started, p50 / p95 | $(fmt_pair "$(v $W/wide/fresh/ready_p50_ms)" "$(v $W/wide/fresh/ready_p95_ms)") | – | – |"
  fi
  echo "| fan-in: last branch ended → join started, median | $(fmt_ms "$(v $W/fanout/fresh/join_ms)") | – | – |"
  echo "| submit (CLI started) → job created, median of chain runs | $(fmt_ms "$(v $W/chain/fresh/submit_ms)") | – | – |"
  echo "| job created → first step started, median of chain runs | $(fmt_ms "$(v $W/chain/fresh/first_ms)") | – | – |"
  echo "| one no-op step, start → end, chain, p50 / p95 | $(fmt_pair "$(v $W/chain/fresh/attempt_p50_ms)" "$(v $W/chain/fresh/attempt_p95_ms)") | $(fmt_pair "$(v $M/chain/fresh/task_p50_ms)" "$(v $M/chain/fresh/task_p95_ms)") | $(ratio "$(v $M/chain/fresh/task_p50_ms)" "$(v $W/chain/fresh/attempt_p50_ms)") |"
  echo "| one no-op step's process (\`/bin/sh -c true\`, fork → exit), chain, p50 / p95 | $(fmt_pair "$(v $W/chain/fresh/proc_p50_ms)" "$(v $W/chain/fresh/proc_p95_ms)") | – | – |"
  echo "| one no-op step, start → end, fan-out ($WORKERS at once), p50 / p95 | $(fmt_pair "$(v $W/fanout/fresh/attempt_p50_ms)" "$(v $W/fanout/fresh/attempt_p95_ms)") | $(fmt_pair "$(v $M/fanout/fresh/task_p50_ms)" "$(v $M/fanout/fresh/task_p95_ms)") | $(ratio "$(v $M/fanout/fresh/task_p50_ms)" "$(v $W/fanout/fresh/attempt_p50_ms)") |"
} >"$TABLE"

# The targets, judged from this run's numbers: the step-to-step latency on
# the chain (p50 and p95) and on the fan-out, and the whole cost of a step
# on the chain beyond its own process (job time less the processes' time,
# ÷ steps).
verdict() { # verdict VALUE LIMIT
  isnum "${1:-}" || { echo "not measured"; return; }
  awk -v x="$1" -v l="$2" 'BEGIN { printf "%s (%.2f ms)\n", (x <= l) ? "**met**" : "**not met**", x }'
}
TARGET_LINE="Targets for Wharf on the local executor, from this run: a no-op step's whole cost beyond its process ≤ $BEYOND_MS ms on the chain $(verdict "$(v $W/chain/fresh/beyond_ms)" $BEYOND_MS); step to step ≤ $TARGET_MS ms: chain p50 $(verdict "$(v $W/chain/fresh/ready_p50_ms)" $TARGET_MS), p95 $(verdict "$(v $W/chain/fresh/ready_p95_ms)" $TARGET_MS), fan-out ready → started p50 $(verdict "$(v $W/fanout/fresh/ready_p50_ms)" $TARGET_MS)."

echo
cat "$TABLE"
echo
echo "$TARGET_LINE"
for t in "${!FAILED[@]}"; do echo "FAILED: $t: ${FAILED[$t]}" >&2; done
echo "load average: $LOAD_START at the start, $LOAD_END at the end"
echo "raw results: $RAW"

bench_stop_if_no_write
if (( ${#FAILED[@]} > 0 )); then
  echo "not writing BENCHMARKS.md: a run failed" >&2
  exit 1
fi

# ---- the section ---------------------------------------------------------

versions="Go: $(go env GOVERSION)"
if needs wharf; then
  versions+="; Wharf: $(bench_wharf_rev) (SQLite store: modernc.org/sqlite $(bench_sqlite_version))"
fi
if has metaflow; then
  versions+="; Metaflow: $MF_PIN (local metadata and datastore), $("$VENV/bin/python" --version)"
fi

SECTION=$WORK/section.md
{
  echo '<!-- bench:pipeline:start -->'
  echo '## pipeline: orchestration overhead, Wharf vs Metaflow (local)'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/pipeline.sh` (settings: `BENCH_REPS`, `BENCH_METAFLOW_FAN_REPS`, `BENCH_CHAIN`, `BENCH_WIDTH`, `BENCH_WIDE`, `BENCH_WIDE_REPS`, `BENCH_METAFLOW_WIDE_REPS`, `BENCH_MAX_WORKERS`, `BENCH_TOOLS`, `BENCH_WHARF_SERVER_FLAGS`); helper `bench/pipeload`.'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine); load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end"
  echo "- Versions: $versions"
  echo "- Flows: a chain of $CHAIN no-op steps; a fan-out of one start step, $WIDTH no-op branches and one join$( (( WIDE > 0 )) && echo ", and the same with $WIDE branches"). Wharf: \`command: \"true\"\` in an environment with only \`image:\` (the host's own tools), each step reading its upstreams' outputs; Metaflow: steps that only call \`self.next\`, \`foreach\` over $WIDTH items, and the \`end\` step it requires (so its fan-out runs ${MF_FAN_TASKS:-$(( WIDTH + 3 ))} tasks to Wharf's $(( WIDTH + 2 )))"
  echo "- At most $WORKERS steps at once in both: Wharf's compute \`--max-instances $WORKERS\`, Metaflow \`run --max-workers $WORKERS --no-pylint\` (fan-outs also \`--max-num-splits\` their width)"
  echo "- Repetitions: Wharf $REPS of each (after one unmeasured submission: a warm-up, or for the reused rows the run that fills the cache); Metaflow chain $REPS after one warm-up, fan-out $MF_FAN_REPS$( (( WIDE > 0 )) && echo "; the $WIDE-branch fan-out: Wharf $WIDE_REPS fresh runs (no warm-up, the server is warm from the runs before), Metaflow $MF_WIDE_REPS"). Medians are nearest-rank (the lower middle one for an even count)."
  if [[ -n ${BENCH_WHARF_SERVER_FLAGS:-} ]]; then
    echo "- Wharf server flags: \`${BENCH_WHARF_SERVER_FLAGS}\`$([[ $BENCH_WHARF_SERVER_FLAGS == *--unsafe-run-steps-as-server-user* ]] && echo " (steps run as the server's user, without a sandbox, as Metaflow's do)")"
  else
    echo "- Wharf server: default flags$([[ $(id -u) == 0 ]] && echo ", as root, so each step runs as \`wharf-step\` in a \`bwrap\` sandbox")"
  fi
  echo "- Wharf: one fresh server (SQLite store) for all its runs; fresh runs have \`force_rerun: true\`, reused runs are the same YAML with \`force_rerun: false\` and every step checked to be reused. Submit → done is from just before \`wharf ml job create\` starts to the job's \`ended_at\` (same clock); step timings are from \`wharf ml job show -o json\`: an attempt's \`started\` is written when it gets a compute slot, before staging and the process, and its \`ended\` after the outputs are saved; \`process_started\` and \`process_ended\` bound the step's process, from just before its fork to its exit."
  echo "- Metaflow: submit → done is \`python flow.py run\` from start to exit; task timings from its own \"Task is starting\" / \"Task finished successfully\" lines (millisecond resolution); each task is a new Python process."
  echo "- Fan-out \"ready\": a branch is ready when its upstream has ended and one of the $WORKERS slots is free (attempts matched to slots in start order, each taking the slot that came free first)."
  for t in "${!UNAVAILABLE[@]}"; do echo "- $t: ${UNAVAILABLE[$t]}; its column is empty"; done
  echo
  cat "$TABLE"
  echo
  echo "$TARGET_LINE"
  echo
  bench_notes pipeline
  echo '<!-- bench:pipeline:end -->'
} >"$SECTION"

bench_write_section pipeline "$SECTION"
