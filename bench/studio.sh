#!/usr/bin/env bash
# bench/studio.sh: the web studio's pages, rendered by Wharf on SQLite, next
# to the data calls of MLflow UI's experiment page and charts on the same
# data served by `mlflow server` (SQLite too), in one run on one machine.
#
# Both stores hold BENCH_RUNS runs in one experiment (params alpha and
# solver, metrics rmse and r2), one run with a BENCH_POINTS-point history
# of "loss" and one with a 1,000-point history; Wharf also holds
# BENCH_JOBS jobs and a three-step pipeline. Wharf is seeded through its
# store's API (bench/studiopages seed), MLflow through its SqlAlchemyStore
# plus bulk inserts of the same rows (bench/studiopages/mlflow_seed.py).
# Each page or call is requested BENCH_N times one after another, after 2
# unmeasured ones, with an owner's bearer token on Wharf; p50 and p95 are
# the client's, nearest rank. A page's weight is its HTML plus every
# script and stylesheet it loads, uncompressed and uncached.
#
# Settings (environment):
#   BENCH_RUNS            runs to seed (default 100000)
#   BENCH_JOBS            jobs to seed (default 10000)
#   BENCH_POINTS          points in the long history (default 1000000)
#   BENCH_N               measured requests per Wharf page (default 20)
#   BENCH_MLFLOW_N        measured requests per MLflow call (default 5); a
#                         call unanswered within BENCH_MLFLOW_TIMEOUT seconds
#                         (default 120) is recorded as such and not repeated
#   BENCH_SERVERS         which to run (default "wharf mlflow"); the rows of
#                         one left out are kept from the previous run's
#                         bench/out/studio.jsonl, and the section says so
#   BENCH_MLFLOW_PYTHON   the Python with mlflow 3 (default
#                         $WHARF_TEST_MLFLOW3_PYTHON, else .venv-mlflow3)
#   BENCH_MLFLOW_WORKERS  `mlflow server --workers` (default 1: on a loaded
#                         machine uvicorn kills workers that start slowly)
#   BENCH_NO_WRITE=1      print the table but leave BENCHMARKS.md alone
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${BENCH_RUNS:-100000}
JOBS=${BENCH_JOBS:-10000}
POINTS=${BENCH_POINTS:-1000000}
N=${BENCH_N:-20}
MLFLOW_N=${BENCH_MLFLOW_N:-5}
MLFLOW_TIMEOUT=${BENCH_MLFLOW_TIMEOUT:-120}
read -ra SERVERS <<<"${BENCH_SERVERS:-wharf mlflow}"
bench_require_names BENCH_SERVERS server "wharf mlflow" "${SERVERS[@]}"
needs() { [[ " ${SERVERS[*]} " == *" $1 "* ]]; }
MLFLOW_WORKERS=${BENCH_MLFLOW_WORKERS:-1}
MLFLOW_PY=${BENCH_MLFLOW_PYTHON:-${WHARF_TEST_MLFLOW3_PYTHON:-$ROOT/.venv-mlflow3/bin/python}}
for v in RUNS JOBS POINTS N MLFLOW_N MLFLOW_TIMEOUT MLFLOW_WORKERS; do
  bench_require_posint "$v" "${!v}"
done
[[ -x $MLFLOW_PY ]] || { echo "no Python with mlflow at $MLFLOW_PY (set BENCH_MLFLOW_PYTHON)" >&2; exit 2; }

bench_start_work wharf-studio
LOAD_START=$(bench_loadavg)
OUT=$ROOT/bench/out/studio.jsonl
mkdir -p "$ROOT/bench/out"
KEPT=""
if [[ ${#SERVERS[@]} -lt 2 && -s $OUT ]]; then
  for s in wharf mlflow; do
    needs "$s" || { grep -F "\"server\":\"$s\"" "$OUT" >"$WORK/kept.jsonl" || true; KEPT=$s; }
  done
fi
: >"$OUT"
[[ -n $KEPT ]] && cat "$WORK/kept.jsonl" >>"$OUT"

echo "==> building"
ensure_go
go build -o "$WORK/bin/wharf" ./cmd/wharf
go build -o "$WORK/bin/studiopages" ./bench/studiopages

if needs wharf; then
echo "==> wharf: seeding $RUNS runs, $JOBS jobs, a $POINTS-point history"
bench_wharf_start wharf "$WORK/wharf"
bench_wharf_token
curl -fsS --max-time 10 -o /dev/null -X PUT -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' --data '{}' "$WHARF_SERVER_URL/api/v1/workspaces/bench"
"$WORK/bin/studiopages" seed -db "$WORK/wharf/data/wharf.db" -workspace bench \
  -runs "$RUNS" -jobs "$JOBS" -points "$POINTS" >"$WORK/wharf-seeded.json"
echo "    seeded in $(bench_jget "$(cat "$WORK/wharf-seeded.json")" seed_seconds) s"
echo "==> wharf: pages"
"$WORK/bin/studiopages" pages -url "$WHARF_SERVER_URL" -token "$TOKEN" -seeded "$WORK/wharf-seeded.json" -n "$N" -warmup 2 \
  | tee -a "$OUT"
stop_server
fi

if needs mlflow; then
echo "==> mlflow: seeding the same data"
mkdir -p "$WORK/mlflow/art"
"$MLFLOW_PY" "$ROOT/bench/studiopages/mlflow_seed.py" "$WORK/mlflow/mlflow.db" "$WORK/mlflow/art" "$RUNS" "$POINTS" \
  2>"$WORK/mlflow/seed.log" >"$WORK/mlflow-seeded.json"
echo "    seeded in $(bench_jget "$(cat "$WORK/mlflow-seeded.json")" seed_seconds) s"
port=$(bench_free_port)
setsid "$(dirname "$MLFLOW_PY")/mlflow" server --backend-store-uri "sqlite:///$WORK/mlflow/mlflow.db" \
  --default-artifact-root "$WORK/mlflow/art" --host 127.0.0.1 --port "$port" --workers "$MLFLOW_WORKERS" \
  >"$WORK/mlflow/server.log" 2>&1 &
SERVER_PID=$!
bench_wait_http mlflow "http://127.0.0.1:$port/health" "$WORK/mlflow/server.log"
echo "==> mlflow: the UI's data calls"
"$WORK/bin/studiopages" mlflow -url "http://127.0.0.1:$port" -seeded "$WORK/mlflow-seeded.json" -n "$MLFLOW_N" -warmup 1 \
  -timeout "${MLFLOW_TIMEOUT}s" | tee -a "$OUT"
stop_server
fi
LOAD_END=$(bench_loadavg)

MLFLOW_VERSION=$("$MLFLOW_PY" -c 'import mlflow; print(mlflow.__version__)')
table=$WORK/table.md
python3 - "$OUT" >"$table" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
w = [r for r in rows if r["server"] == "wharf"]
m = {r["call"]: r for r in rows if r["server"] == "mlflow"}
peer = {
    "runs table (100 of 100,000, newest first)": "runs search (100 of 100,000, newest first)",
    "runs table, filter and order by metric": "runs search, filter and order by metric",
    "chart data, 1,000,000-point history": "chart data, 1,000,000-point history",
    "chart data, 1,000-point history": "chart data, 1,000-point history",
}
print("| Wharf page or call | p50 ms | p95 ms | weight KB | MLflow UI's data call on the same data | p50 ms | p95 ms | Wharf p95 / MLflow p95 |")
print("|---|---:|---:|---:|---|---:|---:|---:|")
for r in w:
    weight = "%.0f" % (r["weight_bytes"] / 1024) if r.get("weight_bytes") else "–"
    p = m.get(peer.get(r["call"], ""))
    if p and p.get("timed_out_s"):
        other = "| %s | no answer in %.0f s | | |" % (p["call"], p["timed_out_s"])
    elif p:
        other = "| %s | %.1f | %.1f | %.3f |" % (p["call"], p["p50_ms"], p["p95_ms"], r["p95_ms"] / p["p95_ms"])
    else:
        other = "| – | | | |"
    print("| %s | %.1f | %.1f | %s %s" % (r["call"], r["p50_ms"], r["p95_ms"], weight, other))
PY
cat "$table"
bench_stop_if_no_write

section=$WORK/section.md
{
  echo "<!-- bench:studio:start -->"
  echo "## Studio pages vs MLflow UI's data calls (\`bench/studio.sh\`)"
  echo
  echo "- Date: $(date -u +%Y-%m-%d), Wharf $(bench_wharf_rev), SQLite (modernc.org/sqlite $(bench_sqlite_version)); MLflow $MLFLOW_VERSION \`mlflow server --workers $MLFLOW_WORKERS\` on SQLite"
  echo "- Machine: $(bench_machine); load average $LOAD_START at the start, $LOAD_END at the end (a shared machine: other work ran beside this)"
  echo "- Data: $RUNS runs, $JOBS jobs, a $POINTS-point metric history; $N requests per Wharf row and $MLFLOW_N per MLflow row (after 2 and 1 unmeasured), one at a time"
  [[ -n $KEPT ]] && echo "- The $KEPT rows are from the previous run of this script (kept in bench/out/studio.jsonl), not this one"
  echo "- Command: \`bench/studio.sh\`"
  echo
  cat "$table"
  echo
  bench_notes studio
  echo "<!-- bench:studio:end -->"
} >"$section"
bench_write_section studio "$section"
