#!/usr/bin/env bash
# bench/jobcreate.sh: how long submitting a pipeline takes, from
# `wharf ml job create` starting to its first step starting, for the taxi
# training pipeline (four steps, a registered data asset read as @latest,
# an environment by reference, one local code folder). Its peer is Wharf
# itself at an earlier commit (BENCH_BASELINE_REV), built and measured in
# the same run: the CLI then resolved the job itself and sent the resolved
# form; now it uploads and sends the job document and the server resolves
# it.
#
#   submit → created       the CLI from start to exit (it prints the job)
#   submit → first step    the CLI's start to the first step's attempt
#                          starting, as the server recorded it (same clock)
#
# Each side gets a fresh server, both running at once; the pipeline runs
# once unmeasured on each (the upload and the environment are then in
# place, as in a team's daily use), then BENCH_REPS times measured, each
# with force_rerun so every run starts its first step. The sides take
# turns, one submission each, waiting for each run to end before the
# next, so that whatever else the machine does falls on both alike.
#
# Settings (environment):
#   BENCH_REPS           measured submissions per side (default 9)
#   BENCH_BASELINE_REV   the commit to compare with (default 6021746, the
#                        last before job documents)
#   BENCH_NO_WRITE=1     print the table but leave BENCHMARKS.md alone
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPS=${BENCH_REPS:-9}
BASE_REV=${BENCH_BASELINE_REV:-6021746}
bench_require_posint BENCH_REPS "$REPS"

bench_start_work wharf-jobcreate
LOAD_START=$(bench_loadavg)

echo "==> building this tree and $BASE_REV"
ensure_go
mkdir -p "$WORK/bin" "$WORK/builds"
go build -o "$WORK/builds/current" ./cmd/wharf
git worktree add -q --detach "$WORK/base-src" "$BASE_REV"
(cd "$WORK/base-src" && go build -o "$WORK/builds/baseline" ./cmd/wharf)
git worktree remove --force "$WORK/base-src"
BASE_SHORT=$(git rev-parse --short "$BASE_REV")

PROJECT=$WORK/project
cp -r cmd/wharf/testdata/taxi-pipeline "$PROJECT"
python3 - "$PROJECT/taxi-data.csv" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("distance,cost\n")
    for i in range(200):
        d = ((i * 7) % 40) / 4 + 0.5
        f.write("%.2f,%.2f\n" % (d, 2.5 + d * 2.1 + (i % 5) / 10))
EOF

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/jobcreate.jsonl
: >"$RAW"
declare -A R=()

# now_ms: wall-clock milliseconds, the clock the server stamps with.
now_ms() { date +%s%3N; }

# first_start_ms JOB: the earliest attempt start of the job's steps, in
# epoch milliseconds, once the job has ended.
first_start_ms() {
  local job=$1 out
  for (( i = 0; i < 600; i++ )); do
    out=$(wh ml job show -n "$job" -w bench -o json)
    if python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["status"] in ("Completed","Failed","Canceled") else 1)' <<<"$out"; then
      python3 -c '
import json, sys
from datetime import datetime
j = json.load(sys.stdin)
if j["status"] != "Completed":
    sys.exit("job %s: %s" % (j["name"], j["status"]))
starts = [a["started"] for s in j.get("steps", []) for a in s.get("attempts", [])]
t = min(datetime.fromisoformat(s.replace("Z", "+00:00")) for s in starts)
print(int(t.timestamp() * 1000))' <<<"$out"
      return
    fi
    sleep 0.2
  done
  echo "job $job did not end" >&2
  return 1
}

# setup NAME: start a fresh server running builds/NAME (its own copy of
# the binary, so both can run at once) with the pipeline's workspace,
# compute, environment and data, and remember how to reach it.
declare -A URL=() CREDS=() PIDS=()
setup() {
  local name=$1
  mkdir -p "$WORK/$name/bin"
  cp "$WORK/builds/$name" "$WORK/$name/bin/wharf"
  rm -f "$WORK/bin/wharf" # the other side's server may be running it
  cp "$WORK/builds/$name" "$WORK/bin/wharf"
  bench_wharf_start "$name" "$WORK/$name"
  URL[$name]=$WHARF_SERVER_URL CREDS[$name]=$(cat "$WHARF_CREDS") PIDS[$name]=$SERVER_PID
  SERVER_PID=""
  use "$name"
  wh ml workspace create -n bench >/dev/null
  wh ml compute create -n cpu-cluster --max-instances 2 -w bench >/dev/null
  wh ml environment create --file "$PROJECT/train-env.yml" -w bench >/dev/null
  wh ml data create --file "$PROJECT/data.yml" -w bench >/dev/null 2>&1
}

# use NAME: point wh at that side's server.
SIDE=""
use() {
  SIDE=$1
  export WHARF_URL=${URL[$1]} WHARF_CREDENTIALS=${CREDS[$1]} WHARF_CONFIG_DIR=$WORK/$1/cli
}
wh() { "$WORK/$SIDE/bin/wharf" "$@"; }

stop_both() { local p; for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
BENCH_EXIT_HOOKS+=(stop_both)

# submit NAME REP: one measured (or, REP 0, unmeasured) submission.
declare -A CREATED=() STARTED=()
submit() {
  local name=$1 rep=$2 t0 t1 job first
  use "$name"
  t0=$(now_ms)
  job=$(wh ml job create --file "$PROJECT/pipeline.yml" -w bench --set settings.force_rerun=true \
    --query name -o tsv 2>/dev/null)
  t1=$(now_ms)
  first=$(first_start_ms "$job")
  (( rep == 0 )) && return
  CREATED[$name]+="$(( t1 - t0 )) "
  STARTED[$name]+="$(( first - t0 )) "
  printf '{"side":"%s","rep":%d,"submit_created_ms":%d,"submit_first_step_ms":%d}\n' \
    "$name" "$rep" $(( t1 - t0 )) $(( first - t0 )) >>"$RAW"
}

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
range() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "–" hi}'; }

echo "==> measuring, the two sides taking turns"
setup baseline
setup current
for (( i = 0; i <= REPS; i++ )); do
  submit baseline "$i"
  submit current "$i"
done
LOAD_END=$(bench_loadavg)
for name in baseline current; do
  R[$name/created]=$(median "${CREATED[$name]}")
  R[$name/started]=$(median "${STARTED[$name]}")
  R[$name/started_range]=$(range "${STARTED[$name]}")
  echo "$name: submit → created ${R[$name/created]} ms, submit → first step ${R[$name/started]} ms (${R[$name/started_range]})"
done

ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f×' % (a / b) if b else '–')" "$1" "$2"; }

SECTION=$WORK/section.md
{
  echo "<!-- bench:jobcreate:start -->"
  echo "## Submitting a pipeline: job document resolved on the server vs resolved in the CLI"
  echo
  echo "- Date: $(date -u +%Y-%m-%d), machine: $(bench_machine); load average at start $LOAD_START, at end $LOAD_END"
  echo "- Wharf $(bench_wharf_rev) against Wharf $BASE_SHORT (the CLI resolved the job and sent the resolved form); SQLite store, sandboxed steps"
  echo "- Command: \`BENCH_REPS=$REPS bench/jobcreate.sh\`; the taxi training pipeline of \`cmd/wharf/testdata/taxi-pipeline\` (4 steps, \`azureml:taxi-data@latest\`, an environment by reference, one code folder), submitted with \`force_rerun\`; medians of $REPS after one unmeasured run"
  echo
  echo "| measure, median | now | $BASE_SHORT | now ÷ $BASE_SHORT |"
  echo "|---|---|---|---|"
  echo "| \`job create\` started → job created (CLI exits) | ${R[current/created]} ms | ${R[baseline/created]} ms | $(ratio "${R[current/created]}" "${R[baseline/created]}") |"
  echo "| \`job create\` started → first step started (min–max) | ${R[current/started]} ms (${R[current/started_range]}) | ${R[baseline/started]} ms (${R[baseline/started_range]}) | $(ratio "${R[current/started]}" "${R[baseline/started]}") |"
  echo
  bench_notes jobcreate
  echo "<!-- bench:jobcreate:end -->"
} >"$SECTION"
cat "$SECTION"
bench_stop_if_no_write
bench_write_section jobcreate "$SECTION"
