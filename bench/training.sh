#!/usr/bin/env bash
# bench/training.sh: fitting one linear regression on one Parquet file,
# `wharf train linear-regression` vs scikit-learn, measured side by side in
# one run on one machine, on the same file.
#
# For each size in BENCH_ROWS it generates taxi trips with `wharf generate
# taxi --format parquet` (deterministic by seed), then runs, BENCH_REPS
# times and interleaved:
#
#   wharf-auto      wharf train linear-regression (default solver: Cholesky
#                   on streamed moments, streaming QR when too collinear,
#                   chosen from the first batch when that shows it already)
#   wharf-cholesky  the same with --solver cholesky forced
#   wharf-qr        the same with --solver qr forced
#   sklearn         a Python script: pandas.read_parquet + LinearRegression().fit
#
# Each is one process timed from start to exit, under /usr/bin/time -v for
# its peak RSS; scikit-learn's script also reports its import, read and fit
# times. Both sides fit cost on the same 19 features (every feature but
# dropoff_month, which equals pickup_month in every generated row). After
# the runs one unmeasured pass over the file scores every model (R² on the
# training rows) and compares Wharf's coefficients with scikit-learn's. The
# script prints a table and rewrites this benchmark's section of
# BENCHMARKS.md. Raw JSON lines go to bench/out/training.jsonl.
#
# Settings (environment):
#   BENCH_ROWS      row counts to run (default "1000000 10000000")
#   BENCH_REPS      measured runs of each side per size (default 3)
#   BENCH_DAYS      days the generated pickups fall in (default 366, so the
#                   month columns vary)
#   BENCH_SEED      generator seed (default 1)
#   BENCH_RUNS      which runs (default "wharf-auto wharf-cholesky wharf-qr sklearn")
#   BENCH_NO_WRITE=1  print the table but leave BENCHMARKS.md alone
#
# scikit-learn, pandas and pyarrow come from PyPI into bench/.venv, pinned
# in bench/requirements-bench.txt. A 10,000,000-row run needs about 9 GiB of
# memory for scikit-learn (see the table's peak RSS) and a few minutes.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read -ra SIZES <<<"${BENCH_ROWS:-1000000 10000000}"
REPS=${BENCH_REPS:-3}
DAYS=${BENCH_DAYS:-366}
SEED=${BENCH_SEED:-1}
read -ra RUNS <<<"${BENCH_RUNS:-wharf-auto wharf-cholesky wharf-qr sklearn}"
ALL_RUNS=(wharf-auto wharf-cholesky wharf-qr sklearn)
PY_PEERS=(scikit-learn pandas pyarrow)
TARGET=cost
# Every feature `wharf generate taxi` writes but dropoff_month: a trip ends
# in the month it starts in, so it repeats pickup_month exactly. With it the
# design is rank-deficient, which both sides fit (the minimum-norm least
# squares), but the coefficients are no longer unique to compare; this
# benchmark measures the full-rank fit.
FEATURES=distance,dropoff_latitude,dropoff_longitude,passengers,pickup_latitude,pickup_longitude,store_forward,vendor,pickup_weekday,pickup_month,pickup_monthday,pickup_hour,pickup_minute,pickup_second,dropoff_weekday,dropoff_monthday,dropoff_hour,dropoff_minute,dropoff_second
# The issue's target: Wharf (default solver) at least this many times faster
# than scikit-learn end to end.
TARGET_X=3

(( ${#SIZES[@]} > 0 )) || { echo "BENCH_ROWS is empty" >&2; exit 2; }
for n in "${SIZES[@]}"; do bench_require_posint BENCH_ROWS "$n"; done
for v in REPS DAYS SEED; do bench_require_posint "BENCH_$v" "${!v}"; done
bench_require_names BENCH_RUNS run "${ALL_RUNS[*]}" "${RUNS[@]}"
if ! /usr/bin/time -v true 2>/dev/null; then
  echo "GNU time (/usr/bin/time -v) is needed for the peak RSS: apt-get install time" >&2
  exit 2
fi

bench_start_work wharf-training
LOAD_START=$(bench_loadavg)

# The process being timed runs in a session of its own; if the script is
# stopped, the whole session goes (/usr/bin/time would leave its child).
RUN_PGID=""
kill_run() { [[ -z $RUN_PGID ]] || kill -KILL -- "-$RUN_PGID" 2>/dev/null || true; }
BENCH_EXIT_HOOKS+=(kill_run)

needs() { [[ " ${RUNS[*]} " == *" $1 "* ]]; }

echo "==> building"
ensure_go
go build -o "$WORK/bin/wharf" ./cmd/wharf
# The trainer logs to tracking only inside a job step; keep it out of one
# and away from the user's CLI config.
unset MLFLOW_TRACKING_URI MLFLOW_RUN_ID
export WHARF_CONFIG_DIR=$WORK/cli

declare -A UNAVAILABLE=()
if needs sklearn && ! bench_pip_pins "${PY_PEERS[@]}"; then
  UNAVAILABLE[sklearn]="$(for p in "${PY_PEERS[@]}"; do printf '%s==%s ' "$p" "$(bench_pin "$p")"; done)could not be installed from PyPI here"
fi
has() { needs "$1" && [[ -z ${UNAVAILABLE[$1]:-} ]]; }
# The agreement check reads the file with pyarrow and numpy from the venv.
CHECK=0
has sklearn && CHECK=1

cat >"$WORK/fit_sklearn.py" <<'EOF'
import time

t0 = time.perf_counter()
import json
import sys

import pandas as pd
from sklearn.linear_model import LinearRegression

t1 = time.perf_counter()
path, target, features = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
df = pd.read_parquet(path)
t2 = time.perf_counter()
m = LinearRegression().fit(df[features], df[target])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "read_s": t2 - t1, "fit_s": t3 - t2, "rows": len(df),
                  "columns": features, "coef": m.coef_.tolist(), "intercept": float(m.intercept_)}))
EOF

# The agreement check: one pass over the file scoring every model given as
# NAME=FILE (a JSON object with columns, coef and intercept); R² and RMSE
# on the training rows, and each model's largest relative coefficient
# difference from the model named sklearn.
cat >"$WORK/check.py" <<'EOF'
import json
import sys

import numpy as np
import pyarrow.parquet as pq

path, target, features = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
models = {}
for arg in sys.argv[4:]:
    name, file = arg.split("=", 1)
    with open(file) as f:
        d = json.load(f)
    if d["columns"] != features:
        sys.exit(f"{name}: columns {d['columns']}, want {features}")
    models[name] = (np.array(d["coef"], dtype=float), float(d["intercept"]))
n, mean, m2 = 0, 0.0, 0.0
xmean, xc = np.zeros(len(features)), np.zeros((len(features), len(features)))
sse = dict.fromkeys(models, 0.0)
for b in pq.ParquetFile(path).iter_batches(batch_size=1 << 20, columns=features + [target]):
    X = np.column_stack([b.column(c).to_numpy() for c in features])
    y = b.column(target).to_numpy()
    nb, mb = len(y), y.mean()
    m2b = float(((y - mb) ** 2).sum())
    d, tot = mb - mean, n + nb
    m2 += m2b + d * d * n * nb / tot
    mean += d * nb / tot
    # The features' centred cross-products, merged the same way.
    xb = X.mean(axis=0)
    xd = xb - xmean
    xc += (X - xb).T @ (X - xb) + np.outer(xd, xd) * n * nb / tot
    xmean += xd * nb / tot
    n = tot
    for k, (c, i) in models.items():
        r = y - (X @ c + i)
        sse[k] += float(r @ r)
# The condition number of the features' correlation matrix, which Wharf's
# Cholesky solver checks against 1e4.
sd = np.sqrt(np.diag(xc))
ev = np.linalg.eigvalsh(xc / np.outer(sd, sd))
out = {}
ref = models.get("sklearn")
for k, (c, i) in models.items():
    e = {"r2": 1 - sse[k] / m2, "rmse": (sse[k] / n) ** 0.5}
    if ref is not None and k != "sklearn":
        e["max_rel_coef_diff"] = float(np.max(np.abs(c - ref[0]) / np.abs(ref[0])))
        e["intercept_rel_diff"] = abs(i - ref[1]) / abs(ref[1])
    out[k] = e
print(json.dumps({"checked_rows": n, "cond": float(ev[-1] / ev[0]), "models": out}))
EOF

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/training.jsonl
: >"$RAW"
declare -A FAILED=()   # FAILED[size/run] = why

# timed OUT ERR CMD...: bench_timed (bench/lib.sh).
timed() { bench_timed "$@"; }

# jfield FILE KEY...: a field of the JSON object in FILE, following KEYs.
jfield() {
  python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print(v)' "$@"
}

# json_escape TEXT: TEXT as a JSON string.
json_escape() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }

# Warm the caches the first measured run would otherwise pay for alone:
# the venv's modules and the Wharf binary.
if has sklearn; then
  "$VENV/bin/python" -c 'import pandas, pyarrow.parquet, sklearn.linear_model' || true
fi
"$WORK/bin/wharf" --help >/dev/null

# run_wharf N FILE SOLVER REP
run_wharf() {
  local n=$1 file=$2 solver=$3 rep=$4 out=$WORK/res/$1-wharf-$3-$4 rc=0 msg
  timed "$out.json" "$out.err" "$WORK/bin/wharf" train linear-regression --train-data "$file" \
    --target "$TARGET" --features "$FEATURES" --solver "$solver" --model-output "$WORK/models/$n-$solver-$rep" \
    -o json || rc=$?
  if (( rc != 0 )); then
    # The last line, less the CLI's "ERROR: (Kind) FILE: " prefix.
    msg=$(grep -v '^\s*Command exited' "$out.err" | tail -n 1 | sed 's/^ERROR: ([A-Za-z]*) [^ ]*: //')
    printf '{"rows":%s,"run":"wharf-%s","rep":%s,"ok":false,"seconds":%s,"max_rss_kb":%s,"error":%s}\n' \
      "$n" "$solver" "$rep" "$ELAPSED" "$RSS_KB" "$(json_escape "$msg")" >>"$RAW"
    printf '    %-15s rep %s: exit %s after %6.2f s, %s\n' "wharf-$solver" "$rep" "$rc" "$ELAPSED" "$msg"
    return 0
  fi
  printf '{"rows":%s,"run":"wharf-%s","rep":%s,"ok":true,"seconds":%s,"max_rss_kb":%s,"solver_used":"%s","in_process_s":%s,"fitted_rows":%s,"reported_r2":%s}\n' \
    "$n" "$solver" "$rep" "$ELAPSED" "$RSS_KB" "$(jfield "$out.json" solver)" \
    "$(jfield "$out.json" metrics training_seconds)" "$(jfield "$out.json" rows)" \
    "$(jfield "$out.json" metrics training_r2)" >>"$RAW"
  printf '    %-15s rep %s: %6.2f s, peak RSS %4d MiB, solver %s\n' "wharf-$solver" "$rep" "$ELAPSED" \
    "$(( RSS_KB / 1024 ))" "$(jfield "$out.json" solver)"
}

# run_sklearn N FILE REP
run_sklearn() {
  local n=$1 file=$2 rep=$3 out=$WORK/res/$1-sklearn-$3 rc=0 msg
  timed "$out.json" "$out.err" "$VENV/bin/python" "$WORK/fit_sklearn.py" "$file" "$TARGET" "$FEATURES" || rc=$?
  if (( rc != 0 )); then
    msg=$(grep -v '^\s*Command exited' "$out.err" | tail -n 1)
    FAILED[$n/sklearn]="exit $rc: $msg"
    printf '{"rows":%s,"run":"sklearn","rep":%s,"ok":false,"seconds":%s,"max_rss_kb":%s,"error":%s}\n' \
      "$n" "$rep" "$ELAPSED" "$RSS_KB" "$(json_escape "$msg")" >>"$RAW"
    printf '    %-15s rep %s: exit %s after %6.2f s, %s\n' sklearn "$rep" "$rc" "$ELAPSED" "$msg"
    return 0
  fi
  printf '{"rows":%s,"run":"sklearn","rep":%s,"ok":true,"seconds":%s,"max_rss_kb":%s,"import_s":%s,"read_s":%s,"fit_s":%s,"fitted_rows":%s}\n' \
    "$n" "$rep" "$ELAPSED" "$RSS_KB" "$(jfield "$out.json" import_s)" "$(jfield "$out.json" read_s)" \
    "$(jfield "$out.json" fit_s)" "$(jfield "$out.json" rows)" >>"$RAW"
  printf '    %-15s rep %s: %6.2f s, peak RSS %4d MiB (import %.2f s, read %.2f s, fit %.2f s)\n' sklearn "$rep" \
    "$ELAPSED" "$(( RSS_KB / 1024 ))" "$(jfield "$out.json" import_s)" "$(jfield "$out.json" read_s)" "$(jfield "$out.json" fit_s)"
}

mkdir -p "$WORK/res" "$WORK/models"
for n in "${SIZES[@]}"; do
  dir=$WORK/data-$n
  echo "==> $n rows: generating Parquet (seed $SEED, $DAYS days)"
  if ! timed "$WORK/gen.json" "$WORK/gen.err" "$WORK/bin/wharf" generate taxi --rows "$n" --batch-rows 0 \
    --seed "$SEED" --days "$DAYS" --format parquet --out "$dir" -o json; then
    tail -n 5 "$WORK/gen.err" >&2
    echo "wharf generate taxi failed" >&2
    exit 1
  fi
  file=$dir/taxi-data.parquet
  bytes=$(stat -c %s "$file")
  printf '{"rows":%s,"run":"generate","ok":true,"seconds":%s,"max_rss_kb":%s,"bytes":%s,"seed":%s,"days":%s}\n' \
    "$n" "$ELAPSED" "$RSS_KB" "$bytes" "$SEED" "$DAYS" >>"$RAW"
  printf '    %.2f s, %d MiB file, peak RSS %d MiB\n' "$ELAPSED" "$(( bytes / 1048576 ))" "$(( RSS_KB / 1024 ))"

  # The order turns by one each round, so that no run always comes right
  # after the same one (scikit-learn's 9 GiB, say).
  for (( rep = 1; rep <= REPS; rep++ )); do
    for (( i = 0; i < ${#RUNS[@]}; i++ )); do
      run=${RUNS[$(( (i + rep - 1) % ${#RUNS[@]} ))]}
      case $run in
        wharf-*) run_wharf "$n" "$file" "${run#wharf-}" "$rep" ;;
        sklearn) has sklearn && run_sklearn "$n" "$file" "$rep" ;;
      esac
    done
  done

  if (( CHECK )) && [[ -s $WORK/res/$n-sklearn-$REPS.json && -z ${FAILED[$n/sklearn]:-} ]]; then
    echo "==> $n rows: checking the models against scikit-learn's"
    models=("sklearn=$WORK/res/$n-sklearn-$REPS.json")
    for run in "${RUNS[@]}"; do
      [[ $run == wharf-* && -s $WORK/res/$n-$run-$REPS.json ]] && models+=("$run=$WORK/res/$n-$run-$REPS.json")
    done
    if line=$("$VENV/bin/python" "$WORK/check.py" "$file" "$TARGET" "$FEATURES" "${models[@]}"); then
      printf '{"rows":%s,"run":"check",%s\n' "$n" "${line#\{}" >>"$RAW"
      echo "    $line"
    else
      FAILED[$n/check]="the agreement check failed"
    fi
  fi
  rm -rf -- "$dir"
done
LOAD_END=$(bench_loadavg)

# ---- the table -----------------------------------------------------------

TABLE=$WORK/table.md
python3 - "$RAW" "$TARGET_X" "${RUNS[*]}" >"$TABLE" 2>"$WORK/target.txt" <<'EOF'
import json
import sys

raw, target_x, runs = sys.argv[1], float(sys.argv[2]), sys.argv[3].split()
lines = [json.loads(l) for l in open(raw) if l.strip()]
sizes = list(dict.fromkeys(l["rows"] for l in lines))


def median(xs):  # nearest rank: the lower middle one for an even count
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2]


def secs(x):
    return f"{x:.2f} s" if x < 100 else f"{x:.0f} s"


def num(x):
    return f"{x:,.0f}"


names = {"wharf-auto": "Wharf, default solver (`auto`)", "wharf-cholesky": "Wharf, `--solver cholesky`",
         "wharf-qr": "Wharf, `--solver qr`", "sklearn": "scikit-learn"}
print("| rows | run | end to end, median (min–max) | rows/s | peak RSS | inside the process, median | "
      "scikit-learn ÷ run | R² on the training rows | max relative coefficient difference from scikit-learn |")
print("|--:|---|--:|--:|--:|---|--:|--:|--:|")
verdicts = []
for n in sizes:
    checked = next((l for l in lines if l["rows"] == n and l["run"] == "check"), {})
    check = checked.get("models", {})
    sk = [l["seconds"] for l in lines if l["rows"] == n and l["run"] == "sklearn" and l["ok"]]
    sk_med = median(sk) if sk else None
    for run in runs:
        rs = [l for l in lines if l["rows"] == n and l["run"] == run]
        if not rs:
            continue
        ok = [l for l in rs if l["ok"]]
        rss = max(l["max_rss_kb"] for l in rs) / 1024
        rss_s = f"{rss / 1024:.2f} GiB" if rss >= 1024 else f"{rss:.0f} MiB"
        name = names[run]
        if not ok:
            errs = sorted({l["error"] for l in rs})
            if "cond" in checked:
                errs = [e + f" (condition number of the features' correlation matrix {checked['cond']:.1e}, above its limit 1e4)"
                        if "nearly collinear" in e else e for e in errs]
            t = median([l["seconds"] for l in rs])
            print(f"| {num(n)} | {name} | refused after {secs(t)}: {'; '.join(errs)} | – | {rss_s} | – | – | – | – |")
            continue
        t = [l["seconds"] for l in ok]
        med = median(t)
        cell = f"{secs(med)} ({min(t):.2f}–{max(t):.2f})"
        if len(ok) < len(rs):
            cell += f", {len(rs) - len(ok)} of {len(rs)} failed"
        if run == "sklearn":
            inside = (f"import {median([l['import_s'] for l in ok]):.2f} s + read {median([l['read_s'] for l in ok]):.2f} s"
                      f" + fit {median([l['fit_s'] for l in ok]):.2f} s")
            ratio = "–"
        else:
            used = sorted({l["solver_used"] for l in ok})
            inside = f"read + fit {secs(median([l['in_process_s'] for l in ok]))} (solver used: {', '.join(used)})"
            ratio = f"{sk_med / med:.2f}×" if sk_med else "–"
        c = check.get(run, {})
        r2 = f"{c['r2']:.6f}" if "r2" in c else "–"
        diff = f"{c['max_rel_coef_diff']:.1e}" if "max_rel_coef_diff" in c else "–"
        print(f"| {num(n)} | {name} | {cell} | {num(n / med)} | {rss_s} | {inside} | {ratio} | {r2} | {diff} |")
    auto = [l["seconds"] for l in lines if l["rows"] == n and l["run"] == "wharf-auto" and l["ok"]]
    if auto and sk_med:
        x = sk_med / median(auto)
        verdicts.append(f"{num(n)} rows {'**met**' if x >= target_x else '**not met**'} ({x:.2f}×)")
    else:
        verdicts.append(f"{num(n)} rows not measured")
print(f"Target, Wharf (default solver) ≥ {target_x:g}× scikit-learn end to end, from this run: "
      + "; ".join(verdicts) + ".", file=sys.stderr)
EOF
TARGET_LINE=$(cat "$WORK/target.txt")

echo
cat "$TABLE"
echo
echo "$TARGET_LINE"
for k in "${!FAILED[@]}"; do echo "FAILED: $k: ${FAILED[$k]}" >&2; done
echo "load average: $LOAD_START at the start, $LOAD_END at the end"
echo "raw results: $RAW"

bench_stop_if_no_write
if (( ${#FAILED[@]} > 0 )); then
  echo "not writing BENCHMARKS.md: a run failed" >&2
  exit 1
fi

# ---- the section ---------------------------------------------------------

gomod() { go list -m -f '{{.Version}}' "$1" 2>/dev/null || echo unknown; }
versions="Go: $(go env GOVERSION); Wharf: $(bench_wharf_rev) (Apache Arrow Go $(gomod github.com/apache/arrow-go/v18), gonum $(gomod gonum.org/v1/gonum))"
if has sklearn; then
  # The BLAS libraries NumPy and SciPy load (scikit-learn's lstsq is
  # SciPy's), once they are imported.
  blas=$("$VENV/bin/python" -c 'import os, sklearn.linear_model
from threadpoolctl import threadpool_info
print("; ".join(sorted("%s %s in %s, %s threads" % (i["internal_api"], i["version"], os.path.basename(os.path.dirname(i["filepath"])), i["num_threads"])
                       for i in threadpool_info() if i["user_api"] == "blas")))' 2>/dev/null || echo unknown)
  versions+="; $("$VENV/bin/python" --version), scikit-learn $(bench_installed scikit-learn), pandas $(bench_installed pandas), pyarrow $(bench_installed pyarrow), NumPy $(bench_installed numpy), SciPy $(bench_installed scipy) (BLAS: $blas)"
fi
sizes_list=$(for n in "${SIZES[@]}"; do printf '%s, ' "$(printf '%d' "$n" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta')"; done)
files=$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["run"] == "generate":
        print("%s rows: %.0f MiB, generated in %.1f s" % (format(d["rows"], ","), d["bytes"] / 2**20, d["seconds"]))' "$RAW" | paste -sd';' | sed 's/;/; /g')

SECTION=$WORK/section.md
{
  echo '<!-- bench:training:start -->'
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo '## training: linear regression on Parquet, `wharf train linear-regression` vs scikit-learn'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/training.sh` (settings: `BENCH_ROWS`, `BENCH_REPS`, `BENCH_DAYS`, `BENCH_SEED`, `BENCH_RUNS`).'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine); load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end"
  echo "- Versions: $versions"
  echo "- Data: \`wharf generate taxi --format parquet --seed $SEED --days $DAYS --rows N\` for N = ${sizes_list%, }: cost and the 20 features, every column a DOUBLE, Snappy, row groups of 1,048,576 rows (${files}). The file was just written, so it is in the page cache for every run. It is deleted before the next size is generated."
  echo "- Model: ordinary least squares of cost on 19 features, every one but \`dropoff_month\` (a trip ends in the month it starts, so it repeats \`pickup_month\` in every row; with both the design is rank-deficient, which both sides fit with the minimum-norm coefficients, but a coefficient comparison wants a full-rank design). Both sides are given the same list."
  echo "- Wharf: \`wharf train linear-regression --train-data FILE --target cost --features ... [--solver cholesky|qr] --model-output DIR\`, one process per fit (GOMAXPROCS = $(nproc)), streaming the file in batches of 65,536 rows; \`auto\` first solves the moments of the first batch: if they are already too collinear (the correlation matrix's condition number above 1e4) it fits by streaming QR in one pass; else it accumulates centred moments over the file and solves by Cholesky, reading the file again into a streaming QR only if the whole file's moments are too collinear. \"Inside the process\" is its own \`training_seconds\` (fit and model saved)."
  echo "- scikit-learn: \`python fit_sklearn.py FILE\`: \`pandas.read_parquet(FILE)\` (pyarrow engine, the whole file), then \`LinearRegression().fit(df[features], df[\"cost\"])\`; it reports its import, read and fit times. OpenBLAS on $(nproc) threads."
  echo "- End to end: process start to exit on the script's clock, the command run under \`/usr/bin/time -v\`, whose maximum resident set size is the peak RSS (the largest of the runs). $REPS runs of each, interleaved (${RUNS[*]}, then the same order turned by one, and so on); medians are nearest-rank. \"scikit-learn ÷ run\" is scikit-learn's median over the run's, so > 1 means Wharf is faster."
  echo "- Agreement: after the runs, one pass with NumPy over the same file scores each model's coefficients: R² = 1 − SSE/SST on all training rows, and the largest |w_j − s_j| / |s_j| over the 19 coefficients against scikit-learn's s."
  for t in "${!UNAVAILABLE[@]}"; do echo "- $t: ${UNAVAILABLE[$t]}; its rows are missing"; done
  echo
  cat "$TABLE"
  echo
  echo "$TARGET_LINE"
  echo
  bench_notes training
  echo '<!-- bench:training:end -->'
} >"$SECTION"

bench_write_section training "$SECTION"
