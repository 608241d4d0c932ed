#!/usr/bin/env bash
# bench/monitoring.sh: data drift over two Parquet files, `wharf monitor
# compute` vs Evidently's DataDriftPreset, side by side in one run on one
# machine, on the same files; then Wharf alone on larger files, to show
# that its memory does not grow with rows.
#
# It generates (bench/monitorgen, deterministic by seed) a reference and a
# current file of BENCH_ROWS rows and 20 columns (15 numerical, 5
# categorical strings), 5 of them shifted in the current file (n0-n2 by
# half a standard deviation, c0-c1 with reversed level weights). For each
# method it runs, one process each timed from start to exit under
# /usr/bin/time -v (peak RSS):
#
#   default        Evidently's choice per column (> 1000 rows: normed
#                  Wasserstein for numbers, Jensen-Shannon for categories,
#                  at 0.1) vs Wharf's Azure defaults (normalized Wasserstein
#                  0.1, Jensen-Shannon 0.1)
#   wasserstein    num_method="wasserstein", num_threshold=0.1 vs Wharf's
#                  numerical.normalized_wasserstein_distance=0.1
#   jensenshannon  num_method="jensenshannon", num_threshold=0.1 vs Wharf's
#                  numerical.jensen_shannon_distance=0.1
#
# and compares the two verdicts of every column (they must agree). Then,
# for each size in BENCH_LARGE_ROWS, it generates files of 2 numerical
# and 1 categorical column and times Wharf alone (default method).
#
# Settings (environment):
#   BENCH_ROWS        rows of the side-by-side files (default 1000000)
#   BENCH_LARGE_ROWS  sizes of Wharf's runs alone (default "10000000 100000000"; empty for none)
#   BENCH_SEED        generator seed (default 1)
#   BENCH_NO_WRITE=1  print the table but leave BENCHMARKS.md alone
#
# Evidently 0.7 needs pandas < 3, so it has a venv of its own,
# .tools/venv-evidently, from bench/requirements-evidently.txt. The
# 100 M-row files take about 3.4 GB of disk in TMPDIR.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=${BENCH_ROWS:-1000000}
read -ra LARGE <<<"${BENCH_LARGE_ROWS-10000000 100000000}"
SEED=${BENCH_SEED:-1}
METHODS=(default wasserstein jensenshannon)
EVENV=$ROOT/.tools/venv-evidently
EREQS=$ROOT/bench/requirements-evidently.txt
bench_require_posint BENCH_ROWS "$ROWS"
bench_require_posint BENCH_SEED "$SEED"
for n in "${LARGE[@]}"; do bench_require_posint BENCH_LARGE_ROWS "$n"; done
if ! /usr/bin/time -v true 2>/dev/null; then
  echo "GNU time (/usr/bin/time -v) is needed for the peak RSS: apt-get install time" >&2
  exit 2
fi

bench_start_work wharf-monitoring
LOAD_START=$(bench_loadavg)
RUN_PGID=""
kill_run() { [[ -z $RUN_PGID ]] || kill -KILL -- "-$RUN_PGID" 2>/dev/null || true; }
BENCH_EXIT_HOOKS+=(kill_run)

echo "==> building"
ensure_go
go build -o "$WORK/bin/wharf" ./cmd/wharf
go build -o "$WORK/bin/monitorgen" ./bench/monitorgen
export WHARF_CONFIG_DIR=$WORK/cli

if ! "$EVENV/bin/python" -c 'import evidently' 2>/dev/null; then
  echo "==> installing Evidently into .tools/venv-evidently"
  python3 -m venv "$EVENV"
  "$EVENV/bin/pip" install -q --disable-pip-version-check -r "$EREQS"
fi
EVIDENTLY_VERSION=$("$EVENV/bin/python" -c 'import evidently; print(evidently.__version__)')
PANDAS_VERSION=$("$EVENV/bin/python" -c 'import pandas; print(pandas.__version__)')

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/monitoring.jsonl
: >"$RAW"

# timed OUT ERR CMD...: bench_timed (bench/lib.sh), stopping the script
# when CMD fails.
timed() {
  local rc=0
  bench_timed "$@" || rc=$?
  if (( rc != 0 )); then
    tail -n 20 "$2" >&2
    echo "${*:3} exited $rc" >&2
    exit 1
  fi
}

wharf_thresholds() {
  case $1 in
    default) ;;
    wasserstein) echo "--threshold numerical.normalized_wasserstein_distance=0.1 --threshold categorical.jensen_shannon_distance=0.1" ;;
    jensenshannon) echo "--threshold numerical.jensen_shannon_distance=0.1 --threshold categorical.jensen_shannon_distance=0.1" ;;
  esac
}

# gen N DIR NUM CAT: generate files; sets GEN_S and SHIFTED.
gen() {
  local t0 t1
  t0=${EPOCHREALTIME/,/.}
  SHIFTED=$("$WORK/bin/monitorgen" -rows "$1" -out "$2" -numerical "$3" -categorical "$4" -seed "$SEED" | tr '\n' ' ')
  t1=${EPOCHREALTIME/,/.}
  GEN_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }')
}

echo "==> generating $ROWS rows x 20 columns"
gen "$ROWS" "$WORK/d" 15 5
MAIN_SHIFTED=$SHIFTED
DATA_MB=$(du -m "$WORK/d/reference.parquet" | cut -f1)
# Warm the page cache and the venv's modules for the first measured run.
cat "$WORK/d"/*.parquet >/dev/null
"$EVENV/bin/python" -c 'import pandas, evidently.presets' >/dev/null 2>&1 || true

for m in "${METHODS[@]}"; do
  echo "==> $m"
  # shellcheck disable=SC2046 # the thresholds are separate words
  timed "$WORK/w-$m.json" "$WORK/w-$m.err" "$WORK/bin/wharf" monitor compute -o json \
    --reference "$WORK/d/reference.parquet" --production "$WORK/d/current.parquet" $(wharf_thresholds "$m")
  W_S=$ELAPSED W_RSS=$RSS_KB
  timed "$WORK/e-$m.json" "$WORK/e-$m.err" "$EVENV/bin/python" "$ROOT/bench/monitoring_evidently.py" \
    "$WORK/d/reference.parquet" "$WORK/d/current.parquet" "$m"
  E_S=$ELAPSED E_RSS=$RSS_KB
  python3 - "$WORK/w-$m.json" "$WORK/e-$m.json" "$m" "$ROWS" "$W_S" "$W_RSS" "$E_S" "$E_RSS" "$MAIN_SHIFTED" >>"$RAW" <<'EOF'
import json, sys
w, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
wd = {r["feature"]: not r["passed"] for r in w}
ed = e["drifted"]
cols = sorted(set(wd) | set(ed))
disagree = [c for c in cols if wd.get(c) != ed.get(c)]
shifted = sys.argv[9].split()
print(json.dumps({"method": sys.argv[3], "rows": int(sys.argv[4]),
    "wharf_s": float(sys.argv[5]), "wharf_rss_kb": int(sys.argv[6]),
    "evidently_s": float(sys.argv[7]), "evidently_rss_kb": int(sys.argv[8]),
    "evidently_inside_s": e["seconds"], "columns": len(cols),
    "wharf_drifted": sorted(c for c in cols if wd.get(c)), "evidently_drifted": sorted(c for c in cols if ed.get(c)),
    "disagree": disagree, "shifted": shifted}))
EOF
  tail -n 1 "$RAW"
done

declare -a LARGE_LINES=()
for n in "${LARGE[@]}"; do
  echo "==> Wharf alone, $n rows x 3 columns"
  rm -rf "$WORK/big"
  gen "$n" "$WORK/big" 2 1
  size=$(du -m "$WORK/big/reference.parquet" | cut -f1)
  timed "$WORK/big.json" "$WORK/big.err" "$WORK/bin/wharf" monitor compute -o json \
    --reference "$WORK/big/reference.parquet" --production "$WORK/big/current.parquet"
  drifted=$(python3 -c 'import json, sys; print(" ".join(r["feature"] for r in json.load(open(sys.argv[1])) if not r["passed"]))' "$WORK/big.json")
  printf '{"method":"default","rows":%s,"columns":3,"wharf_s":%s,"wharf_rss_kb":%s,"file_mb":%s,"generate_s":%s,"wharf_drifted":"%s","shifted":"%s"}\n' \
    "$n" "$ELAPSED" "$RSS_KB" "$size" "$GEN_S" "$drifted" "$SHIFTED" >>"$RAW"
  tail -n 1 "$RAW"
  rm -rf "$WORK/big"
done
LOAD_END=$(bench_loadavg)

SECTION=$WORK/section.md
python3 - "$RAW" >"$WORK/tables.md" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
side = [r for r in rows if "evidently_s" in r]
alone = [r for r in rows if "evidently_s" not in r]
print("| method | Wharf end to end | Evidently end to end | Evidently ÷ Wharf | Evidently read + drift (inside) | inside ÷ Wharf | Wharf peak RSS | Evidently peak RSS | columns drifted (Wharf / Evidently) | verdicts agree |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for r in side:
    inside = r["evidently_inside_s"]["read"] + r["evidently_inside_s"]["drift"]
    agree = "yes, all %d" % r["columns"] if not r["disagree"] else "no: " + ", ".join(r["disagree"])
    print(f"| {r['method']} | {r['wharf_s']:.2f} s | {r['evidently_s']:.1f} s | {r['evidently_s']/r['wharf_s']:.0f}x | {inside:.1f} s | {inside/r['wharf_s']:.0f}x | {r['wharf_rss_kb']/1024:.0f} MiB | {r['evidently_rss_kb']/1024:.0f} MiB | {' '.join(r['wharf_drifted'])} / {' '.join(r['evidently_drifted'])} | {agree} |")
if alone:
    print()
    print("| rows (Wharf alone, 3 columns) | file size (each) | Wharf end to end | rows/s (both files) | Wharf peak RSS | columns drifted |")
    print("|---:|---:|---:|---:|---:|---|")
    for r in alone:
        print(f"| {r['rows']:,} | {r['file_mb']:,} MB | {r['wharf_s']:.1f} s | {2*r['rows']/r['wharf_s']/1e6:.1f} M | {r['wharf_rss_kb']/1024:.0f} MiB | {r['wharf_drifted']} |")
EOF
cat "$WORK/tables.md"
bench_stop_if_no_write
{
  echo '<!-- bench:monitoring:start -->'
  echo '## monitoring: data drift, `wharf monitor compute` vs Evidently'
  echo
  echo 'Reproduce: `bench/monitoring.sh` (settings: `BENCH_ROWS`, `BENCH_LARGE_ROWS`, `BENCH_SEED`).'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine); load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end. The machine is shared and was loaded by other work during the run: absolute times are inflated and noisy; compare the ratios, which come from one run."
  echo "- Versions: $(go version | cut -d' ' -f3); Wharf: $(bench_wharf_rev); Python $("$EVENV/bin/python" -c 'import platform; print(platform.python_version())'), Evidently $EVIDENTLY_VERSION, pandas $PANDAS_VERSION"
  echo "- Data: \`bench/monitorgen -rows $ROWS -seed $SEED\`: a reference and a current Parquet file (Snappy, $DATA_MB MB each), 15 numerical columns (normal) and 5 categorical (12 string levels); shifted in the current file: $MAIN_SHIFTED(numbers by half a standard deviation, levels with reversed weights). Both files are in the page cache."
  echo "- Wharf: \`wharf monitor compute --reference reference.parquet --production current.parquet -o json [--threshold ...]\`, one process (GOMAXPROCS = $(nproc)). Evidently: \`bench/monitoring_evidently.py\`: \`pandas.read_parquet\` of both files, then \`Report([DataDriftPreset(...)]).run(...)\` with the columns' types given. End to end is process start to exit (Python's imports included; the inside column is Evidently's own read + drift time); peak RSS from \`/usr/bin/time -v\`. One run of each."
  echo
  cat "$WORK/tables.md"
  echo
  bench_notes monitoring
  echo '<!-- bench:monitoring:end -->'
} >"$SECTION"
bench_write_section monitoring "$SECTION"
