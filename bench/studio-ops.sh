#!/usr/bin/env bash
# bench/studio-ops.sh: server render time and weight of the studio's
# operations pages (models, endpoints, batch endpoints, data with its
# preview, environments, components, compute, schedules, audit) over a
# large store, each beside the REST API call that returns the same data as
# JSON, measured in the same run.
#
# bench/studioload seeds a fresh SQLite store, serves it with Wharf's HTTP
# server on loopback and asks each page and its API call one after the
# other. The table gives p50/p95 of both, the page/API p95 ratio and the
# page's bytes; raw JSON lines go to bench/out/studio-ops.jsonl.
#
# Settings (environment):
#   BENCH_REQUESTS   measured requests per page and per API call (default 200)
#   BENCH_JOBS       top-level jobs in the store (default 10000)
#   BENCH_AUDIT      audit events in the store (default 10000)
#   BENCH_NO_WRITE=1 print the table but leave BENCHMARKS.md alone
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS=${BENCH_REQUESTS:-200}
JOBS=${BENCH_JOBS:-10000}
AUDIT=${BENCH_AUDIT:-10000}
bench_require_posint BENCH_REQUESTS "$REQUESTS"
bench_require_posint BENCH_JOBS "$JOBS"
bench_require_posint BENCH_AUDIT "$AUDIT"

bench_start_work wharf-studio-ops
echo "==> building"
ensure_go
go build -o "$WORK/bin/studioload" ./bench/studioload

mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/studio-ops.jsonl
LOAD_BEFORE=$(bench_loadavg)
echo "==> seeding ($JOBS jobs, $AUDIT audit events) and measuring"
"$WORK/bin/studioload" -jobs "$JOBS" -audit "$AUDIT" -n "$REQUESTS" >"$RAW"
LOAD_AFTER=$(bench_loadavg)

TABLE=$WORK/table.md
{
  echo '| page | page p50 ms | page p95 ms | API call | API p50 ms | API p95 ms | page/API p95 | page KB |'
  echo '|---|--:|--:|---|--:|--:|--:|--:|'
  while IFS= read -r line; do
    printf '| %s | %s | %s | `%s` | %s | %s | %s | %s |\n' \
      "$(bench_jget "$line" page)" "$(bench_jget "$line" p50_ms)" "$(bench_jget "$line" p95_ms)" \
      "$(bench_jget "$line" api)" "$(bench_jget "$line" api_p50_ms)" "$(bench_jget "$line" api_p95_ms)" \
      "$(bench_jget "$line" p95_ratio)" "$(awk -v b="$(bench_jget "$line" bytes)" 'BEGIN { printf "%.1f", b / 1024 }')"
  done <"$RAW"
} >"$TABLE"
echo
cat "$TABLE"
echo
echo "raw results: $RAW"

bench_stop_if_no_write

SECTION=$WORK/section.md
{
  echo '<!-- bench:studio-ops:start -->'
  echo '## studio-ops: operations pages of the studio over a large store'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/studio-ops.sh` (settings: `BENCH_REQUESTS`, `BENCH_JOBS`, `BENCH_AUDIT`).'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); Wharf $(bench_wharf_rev)"
  echo "- Machine: $(bench_machine); load average before/after: $LOAD_BEFORE / $LOAD_AFTER (the machine was shared)"
  echo "- Go: $(go env GOVERSION); SQLite: modernc.org/sqlite $(bench_sqlite_version)"
  echo "- Store: $JOBS jobs, $AUDIT audit events, 100 models × 10 versions, 20 endpoints × 2 deployments, 200 each of data assets (a 100,000-row CSV to preview), environments and components, 20 schedules, 5 clusters"
  echo "- Each page and its API call: $REQUESTS requests in a row after 20 unmeasured, as the Owner's bearer token, over loopback from the same process; times are the client's, first byte to last"
  echo
  cat "$TABLE"
  echo
  bench_notes studio-ops
  echo '<!-- bench:studio-ops:end -->'
} >"$SECTION"

bench_write_section studio-ops "$SECTION"
