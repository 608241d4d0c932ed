#!/usr/bin/env bash
# bench/batch.sh: scoring one large batch file, side by side in one run on
# one machine, on the same generated taxi trips:
#
#   wharf-native      a batch endpoint job with a model `wharf train
#                     linear-regression` wrote (scored in Go, column by
#                     column); once with the Parquet file, once with the CSV
#                     file (run wharf-native-csv)
#   wharf-mlflow      a batch endpoint job with an MLflow scikit-learn model
#                     (no scoring script: Python workers score each
#                     mini-batch with mlflow.pyfunc)
#   pyfunc-loop       a plain Python script: mlflow.pyfunc.load_model, then
#                     the file in chunks of 100,000 rows, predict, append to
#                     a CSV; with the Parquet file (pyarrow) and with the CSV
#                     file (pandas.read_csv, run pyfunc-loop-csv)
#
# Every run writes the same output, file_name,row,prediction for every row.
# The Wharf runs go through a server (SQLite, local artifact store), a
# batch endpoint with one deployment per model (instance_count 1 ×
# max_concurrency_per_instance 2 = 2 workers) and `wharf ml batch-endpoint
# invoke --input azureml:DATA@latest`, the data assets registered (uploaded)
# once beforehand. For each job the script takes the time from just before
# invoke to the end of `wharf ml job stream` (end to end, the job's
# start-up, scoring, and storing its outputs), the scoring time and the
# moment scoring began from the job's summary.json (so "invoke to scoring"
# is that moment less the invoke's start, both on this machine's clock),
# and checks that predictions.csv has one line per row.
#
# Settings (environment):
#   BENCH_ROWS      rows of the batch file (default 10000000)
#   BENCH_REPS      measured runs of each (default 2)
#   BENCH_SEED      generator seed (default 1)
#   BENCH_RUNS      which runs (default "wharf-native wharf-native-csv
#                   wharf-mlflow pyfunc-loop pyfunc-loop-csv")
#   BENCH_NO_WRITE=1  print the table but leave BENCHMARKS.md alone
#
# mlflow, scikit-learn, pandas and pyarrow come from PyPI into bench/.venv,
# pinned in bench/requirements-bench.txt. The 10,000,000-row run needs about
# 3 GiB of disk in TMPDIR and some minutes.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=${BENCH_ROWS:-10000000}
REPS=${BENCH_REPS:-2}
SEED=${BENCH_SEED:-1}
read -ra RUNS <<<"${BENCH_RUNS:-wharf-native wharf-native-csv wharf-mlflow pyfunc-loop pyfunc-loop-csv}"
ALL_RUNS=(wharf-native wharf-native-csv wharf-mlflow pyfunc-loop pyfunc-loop-csv)
PY_PEERS=(mlflow scikit-learn pandas pyarrow)
# Every feature but dropoff_month, which repeats pickup_month (see
# bench/training.sh).
FEATURES=distance,dropoff_latitude,dropoff_longitude,passengers,pickup_latitude,pickup_longitude,store_forward,vendor,pickup_weekday,pickup_month,pickup_monthday,pickup_hour,pickup_minute,pickup_second,dropoff_weekday,dropoff_monthday,dropoff_hour,dropoff_minute,dropoff_second
# The issue's targets: native scoring at least this many rows a second, and
# scoring under way within this many seconds of invoke.
TARGET_RPS=1000000
TARGET_START_S=1

for v in ROWS REPS SEED; do bench_require_posint "BENCH_$v" "${!v}"; done
bench_require_names BENCH_RUNS run "${ALL_RUNS[*]}" "${RUNS[@]}"
needs() { [[ " ${RUNS[*]} " == *" $1 "* ]]; }

bench_start_work wharf-batch
LOAD_START=$(bench_loadavg)

echo "==> building"
ensure_go
go build -o "$WORK/bin/wharf" ./cmd/wharf
export WHARF_CONFIG_DIR=$WORK/cli
unset MLFLOW_TRACKING_URI MLFLOW_RUN_ID

PYTHON_OK=1
if ! bench_pip_pins "${PY_PEERS[@]}"; then
  PYTHON_OK=0
  echo "the Python peers could not be installed; only the native runs are measured" >&2
  read -ra RUNS <<<"$(for r in "${RUNS[@]}"; do [[ $r == wharf-native* ]] && printf '%s ' "$r"; done)"
fi

echo "==> generating $ROWS rows (seed $SEED)"
DATA=$WORK/data
mkdir -p "$DATA"
"$WORK/bin/wharf" generate taxi --seed "$SEED" --rows 100000 --batch-rows "$ROWS" --format parquet --out "$DATA/pq" >/dev/null
if needs wharf-native-csv || needs pyfunc-loop-csv; then
  "$WORK/bin/wharf" generate taxi --seed "$SEED" --rows 100000 --batch-rows "$ROWS" --format csv --out "$DATA/csv" >/dev/null
fi

echo "==> training the two models on 100,000 other trips"
"$WORK/bin/wharf" train linear-regression --train-data "$DATA/pq/taxi-data.parquet" --target cost \
  --features "$FEATURES" --model-output "$WORK/models/native" >/dev/null
if (( PYTHON_OK )); then
  "$VENV/bin/python" - "$DATA/pq/taxi-data.parquet" "$FEATURES" "$WORK/models/sklearn" <<'EOF'
import sys

import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression

path, features, out = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
df = pd.read_parquet(path)
m = LinearRegression().fit(df[features], df["cost"])
mlflow.sklearn.save_model(m, out, signature=infer_signature(df[features], m.predict(df[features])))
EOF
fi

cat >"$WORK/pyfunc_loop.py" <<'EOF'
import time

t0 = time.perf_counter()
import json
import os
import sys

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

model_dir, path, out, features = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
t1 = time.perf_counter()
model = mlflow.pyfunc.load_model(model_dir)
t2 = time.perf_counter()
name = os.path.basename(path)
if path.endswith(".parquet"):
    chunks = (b.to_pandas() for b in pq.ParquetFile(path).iter_batches(batch_size=100_000, columns=features))
else:
    chunks = pd.read_csv(path, chunksize=100_000, usecols=features)
rows = 0
with open(out, "w") as f:
    f.write("file_name,row,prediction\n")
    for df in chunks:
        # pandas reads whole-number columns as int64, which the model's
        # double columns refuse: cast, as such a script must.
        p = model.predict(df[features].astype("float64"))
        pd.DataFrame({"file_name": name, "row": np.arange(rows + 1, rows + len(df) + 1), "prediction": p}).to_csv(
            f, header=False, index=False)
        rows += len(df)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "score_s": t3 - t2, "rows": rows}))
EOF

# The server: python3 on its PATH is bench/.venv's, for the MLflow workers.
echo "==> starting Wharf"
export PATH=$VENV/bin:$PATH
bench_wharf_start wharf "$WORK/server"
bench_wharf_cli_env "$WORK/cli"
w() { "$WORK/bin/wharf" "$@" -w bench; }
"$WORK/bin/wharf" ml workspace create -n bench >/dev/null
w ml compute create -n batch-cluster --max-instances 1 >/dev/null
w ml model create --name taxi-native --path "$WORK/models/native" >/dev/null
(( PYTHON_OK )) && w ml model create --name taxi-sklearn --path "$WORK/models/sklearn" >/dev/null
declare -A UPLOAD=()
t0=${EPOCHREALTIME/,/.}
w ml data create --name taxi-batch-parquet --type uri_file --path "$DATA/pq/taxi-batch.parquet" >/dev/null
UPLOAD[parquet]=$(awk -v a="$t0" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }')
if [[ -d $DATA/csv ]]; then
  t0=${EPOCHREALTIME/,/.}
  w ml data create --name taxi-batch-csv --type uri_file --path "$DATA/csv/taxi-batch.csv" >/dev/null
  UPLOAD[csv]=$(awk -v a="$t0" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }')
fi
printf 'name: taxi-batch\n' >"$WORK/endpoint.yml"
w ml batch-endpoint create -f "$WORK/endpoint.yml" >/dev/null
for m in native sklearn; do
  [[ $m == sklearn ]] && (( ! PYTHON_OK )) && continue
  cat >"$WORK/deploy-$m.yml" <<EOF
name: $m
endpoint_name: taxi-batch
model: azureml:taxi-$m@latest
compute: azureml:batch-cluster
resources:
  instance_count: 1
max_concurrency_per_instance: 2
mini_batch_size: 10
output_action: append_row
output_file_name: predictions.csv
retry_settings:
  max_retries: 1
  timeout: 600
error_threshold: -1
EOF
  w ml batch-deployment create -f "$WORK/deploy-$m.yml" >/dev/null
done

mkdir -p "$ROOT/bench/out" "$WORK/res"
RAW=$ROOT/bench/out/batch.jsonl
: >"$RAW"
FAILED=0

# wharf_job RUN DEPLOYMENT FORMAT REP
wharf_job() {
  local run=$1 dep=$2 format=$3 rep=$4 t0 t1 job status lines dl=$WORK/res/$1-$4
  t0=${EPOCHREALTIME/,/.}
  job=$(w ml batch-endpoint invoke --name taxi-batch --deployment-name "$dep" --input "azureml:taxi-batch-$format@latest" \
    --query name -o tsv)
  w ml job stream -n "$job" >"$dl.log" 2>&1 || true
  t1=${EPOCHREALTIME/,/.}
  status=$(w ml job show -n "$job" --query status -o tsv)
  if [[ $status != Completed ]]; then
    tail -n 20 "$dl.log" >&2
    echo "    $run rep $rep: job $job $status" >&2
    FAILED=1
    return 0
  fi
  w ml job download -n "$job" --output-name score --download-path "$dl" >/dev/null
  lines=$(wc -l <"$dl/named-outputs/score/predictions.csv")
  python3 - "$dl/named-outputs/score/summary.json" "$run" "$rep" "$t0" "$t1" "$lines" "$ROWS" >>"$RAW" <<'EOF'
import datetime
import json
import sys

s = json.load(open(sys.argv[1]))
run, rep, t0, t1, lines, rows = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
started = datetime.datetime.fromisoformat(s["started"].replace("Z", "+00:00")).timestamp()
print(json.dumps({"run": run, "rep": rep, "ok": s["rows_scored"] == rows and lines == rows + 1 and s["failed_items"] == 0,
                  "rows": s["rows_scored"], "lines": lines, "end_to_end_s": t1 - t0, "score_s": s["seconds"],
                  "invoke_to_scoring_s": started - t0, "mini_batches": s["mini_batches"]}))
EOF
  rm -rf "$dl"
  tail -n 1 "$RAW" | python3 -c 'import json, sys; d = json.load(sys.stdin)
print("    %-16s rep %d: end to end %6.2f s, scoring %6.2f s (%9.0f rows/s), invoke to scoring %.2f s%s" % (
    d["run"], d["rep"], d["end_to_end_s"], d["score_s"], d["rows"] / d["score_s"], d["invoke_to_scoring_s"], "" if d["ok"] else ", WRONG OUTPUT"))'
}

# pyfunc_loop RUN FILE REP
pyfunc_loop() {
  local run=$1 file=$2 rep=$3 t0 t1 out=$WORK/res/$1-$3
  t0=${EPOCHREALTIME/,/.}
  if ! "$VENV/bin/python" "$WORK/pyfunc_loop.py" "$WORK/models/sklearn" "$file" "$out.csv" "$FEATURES" >"$out.json" 2>"$out.err"; then
    tail -n 20 "$out.err" >&2
    echo "    $run rep $rep failed" >&2
    FAILED=1
    return 0
  fi
  t1=${EPOCHREALTIME/,/.}
  python3 - "$out.json" "$run" "$rep" "$t0" "$t1" "$(wc -l <"$out.csv")" "$ROWS" >>"$RAW" <<'EOF'
import json
import sys

d = json.load(open(sys.argv[1]))
run, rep, t0, t1, lines, rows = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
print(json.dumps({"run": run, "rep": rep, "ok": d["rows"] == rows and lines == rows + 1, "rows": d["rows"], "lines": lines,
                  "end_to_end_s": t1 - t0, "score_s": d["score_s"], "import_s": d["import_s"], "load_s": d["load_s"]}))
EOF
  rm -f "$out.csv"
  tail -n 1 "$RAW" | python3 -c 'import json, sys; d = json.load(sys.stdin)
print("    %-16s rep %d: end to end %6.2f s, scoring %6.2f s (%9.0f rows/s)%s" % (
    d["run"], d["rep"], d["end_to_end_s"], d["score_s"], d["rows"] / d["score_s"], "" if d["ok"] else ", WRONG OUTPUT"))'
}

one() {
  case $1 in
    wharf-native) wharf_job "$1" native parquet "$2" ;;
    wharf-native-csv) wharf_job "$1" native csv "$2" ;;
    wharf-mlflow) wharf_job "$1" sklearn parquet "$2" ;;
    pyfunc-loop) pyfunc_loop "$1" "$DATA/pq/taxi-batch.parquet" "$2" ;;
    pyfunc-loop-csv) pyfunc_loop "$1" "$DATA/csv/taxi-batch.csv" "$2" ;;
  esac
}

echo "==> scoring $ROWS rows, $REPS runs of each, interleaved"
for (( rep = 1; rep <= REPS; rep++ )); do
  for run in "${RUNS[@]}"; do one "$run" "$rep"; done
done
LOAD_END=$(bench_loadavg)

# ---- the table -----------------------------------------------------------

TABLE=$WORK/table.md
python3 - "$RAW" "${RUNS[*]}" "$TARGET_RPS" "$TARGET_START_S" >"$TABLE" 2>"$WORK/target.txt" <<'EOF'
import json
import sys

raw, runs, target_rps, target_start = sys.argv[1], sys.argv[2].split(), float(sys.argv[3]), float(sys.argv[4])
lines = [json.loads(l) for l in open(raw) if l.strip()]


def median(xs):  # nearest rank: the lower middle one for an even count
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2]


names = {"wharf-native": ("Wharf, native model (Go)", "Parquet"), "wharf-native-csv": ("Wharf, native model (Go)", "CSV"),
         "wharf-mlflow": ("Wharf, MLflow scikit-learn model (no-code)", "Parquet"),
         "pyfunc-loop": ("Python loop: mlflow.pyfunc + pyarrow/pandas", "Parquet"),
         "pyfunc-loop-csv": ("Python loop: mlflow.pyfunc + pandas.read_csv", "CSV")}
peer_of = {"wharf-native": "pyfunc-loop", "wharf-native-csv": "pyfunc-loop-csv", "wharf-mlflow": "pyfunc-loop"}
med = {}
for run in runs:
    ok = [l for l in lines if l["run"] == run and l["ok"]]
    if ok:
        med[run] = {k: median([l[k] for l in ok]) for k in ("end_to_end_s", "score_s")}
        med[run]["rows"] = ok[0]["rows"]
        if "invoke_to_scoring_s" in ok[0]:
            med[run]["start"] = median([l["invoke_to_scoring_s"] for l in ok])
            med[run]["start_max"] = max(l["invoke_to_scoring_s"] for l in ok)
print("| run | input | end to end, median (min–max) | scoring, median | rows/s scoring | invoke to scoring, median (max) | "
      "peer's end to end ÷ run's |")
print("|---|---|--:|--:|--:|--:|--:|")
for run in runs:
    if run not in med:
        print(f"| {names[run][0]} | {names[run][1]} | failed | – | – | – | – |")
        continue
    m = med[run]
    e2e = [l["end_to_end_s"] for l in lines if l["run"] == run and l["ok"]]
    start = f"{m['start']:.2f} s ({m['start_max']:.2f} s)" if "start" in m else "–"
    peer = peer_of.get(run)
    ratio = f"{med[peer]['end_to_end_s'] / m['end_to_end_s']:.2f}×" if peer in med else "–"
    print(f"| {names[run][0]} | {names[run][1]} | {m['end_to_end_s']:.2f} s ({min(e2e):.2f}–{max(e2e):.2f}) | "
          f"{m['score_s']:.2f} s | {m['rows'] / m['score_s']:,.0f} | {start} | {ratio} |")
verdicts = []
for run in ("wharf-native", "wharf-native-csv"):
    if run in med:
        rps = med[run]["rows"] / med[run]["score_s"]
        verdicts.append(f"native scoring ≥ {target_rps:,.0f} rows/s ({names[run][1]}): "
                        f"{'**met**' if rps >= target_rps else '**not met**'} ({rps:,.0f})")
starts = [l["invoke_to_scoring_s"] for l in lines if l["ok"] and "invoke_to_scoring_s" in l]
if starts:
    verdicts.append(f"scoring within {target_start:g} s of invoke: {'**met**' if max(starts) <= target_start else '**not met**'}"
                    f" (at most {max(starts):.2f} s over {len(starts)} jobs)")
print("Targets, from this run: " + "; ".join(verdicts) + ".", file=sys.stderr)
EOF
TARGET_LINE=$(cat "$WORK/target.txt")

echo
cat "$TABLE"
echo
echo "$TARGET_LINE"
echo "load average: $LOAD_START at the start, $LOAD_END at the end"
echo "raw results: $RAW"

bench_stop_if_no_write
if (( FAILED )); then
  echo "not writing BENCHMARKS.md: a run failed" >&2
  exit 1
fi

# ---- the section ---------------------------------------------------------

versions="Go: $(go env GOVERSION); Wharf: $(bench_wharf_rev)"
if (( PYTHON_OK )); then
  versions+="; $("$VENV/bin/python" --version), mlflow $(bench_installed mlflow), scikit-learn $(bench_installed scikit-learn), pandas $(bench_installed pandas), pyarrow $(bench_installed pyarrow)"
fi
uploads="Parquet ${UPLOAD[parquet]} s"
[[ -n ${UPLOAD[csv]:-} ]] && uploads+=", CSV ${UPLOAD[csv]} s"
sizes=$(for f in "$DATA"/pq/taxi-batch.parquet "$DATA"/csv/taxi-batch.csv; do
  [[ -f $f ]] && printf '%s %d MiB, ' "${f##*.}" "$(( $(stat -c %s "$f") / 1048576 ))"
done)

SECTION=$WORK/section.md
{
  echo '<!-- bench:batch:start -->'
  echo '## batch: scoring a whole file, Wharf batch endpoints vs a plain mlflow.pyfunc loop'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/batch.sh` (settings: `BENCH_ROWS`, `BENCH_REPS`, `BENCH_SEED`, `BENCH_RUNS`).'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine); load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end"
  echo "- Versions: $versions"
  echo "- Data: \`wharf generate taxi --seed $SEED --batch-rows $ROWS\`, the batch file (the 20 features, no cost) as Parquet (every column a DOUBLE, Snappy) and as CSV (${sizes%, }). Models: least squares on 19 features (all but \`dropoff_month\`), fitted on 100,000 other generated trips, by \`wharf train linear-regression\` (native) and by scikit-learn's \`LinearRegression\`, saved with \`mlflow.sklearn.save_model\` and a signature."
  echo "- Wharf: one server (SQLite, local artifact store); each model registered, one batch endpoint with a deployment per model (\`instance_count: 1\`, \`max_concurrency_per_instance: 2\`, the default 100,000 rows per mini-batch of a single file, \`append_row\`; \`batch-deployment create\` returns once the deployment is provisioned, for the MLflow model once its warm Python process has imported its libraries); the file registered once as a \`uri_file\` data asset (upload: $uploads, not counted), then \`wharf ml batch-endpoint invoke --input azureml:DATA@latest\` and \`wharf ml job stream\`. End to end is invoke's start to stream's end: the job starting, scoring, writing predictions.csv and storing it as the job's output. Scoring is the job's own count from reading the first row to the last mini-batch done (summary.json), and invoke to scoring is when that began less invoke's start. The output is checked: one line per row."
  echo "- Python loop: one process, \`mlflow.pyfunc.load_model\`, then the file in chunks of 100,000 rows (pyarrow \`iter_batches\` or \`pandas.read_csv(chunksize=)\`), \`model.predict\` (MLflow's schema check included), the same three output columns appended with \`DataFrame.to_csv\`. End to end is process start to exit; scoring is from after the model is loaded. One Python process is what such a script is; Wharf runs two workers."
  echo "- $REPS runs of each, interleaved; medians are nearest-rank. \"Peer's end to end ÷ run's\" compares each Wharf run with the Python loop reading the same format, so > 1 means Wharf is faster."
  echo
  cat "$TABLE"
  echo
  echo "$TARGET_LINE"
  echo
  bench_notes batch
  echo '<!-- bench:batch:end -->'
} >"$SECTION"

bench_write_section batch "$SECTION"
