#!/usr/bin/env bash
# bench/storage.sh: Wharf's blob store in object storage vs the plain SDK,
# upload and download throughput, side by side in one run against the same
# emulators: Azurite (Azure Blob Storage) and moto's server (S3).
#
# For each backend it starts the emulator (Azurite persisting to disk in
# the throwaway folder; moto in memory) and runs bench/storeload, which
# times, on each side:
#
#   large  one file of BENCH_SIZE bytes: Wharf's Put of the file (hashed,
#          then sent in 8 MiB parts, 4 at a time) vs the SDK's parallel
#          upload of the same file (Azure UploadFile, S3 manager.Uploader,
#          same part size and concurrency); Wharf's CopyFile (ranges in
#          parallel into a file, hashed in order from memory as the ranges
#          land, checked against the digest at the end) vs the SDK's
#          parallel download to a file (DownloadFile, manager.Downloader),
#          ranges of the same size, up to 4 at a time, on both sides
#   small  BENCH_FILES files of BENCH_SMALL bytes, 16 in flight: Wharf's
#          Put and Open (read and verified) vs the SDK's one-request upload
#          and download of each
#
# Every download is checked against what was uploaded. The ratio is Wharf's
# throughput over the SDK's, so >= 1 means Wharf is as fast; the target is
# 0.8. Raw JSON lines go to bench/out/storage.jsonl; each measurement is
# printed as it is made.
#
# Range size on moto: moto's server reads the whole object to answer any
# GET, ranged or not, and then slices the range out (FakeKey.value, then
# _handle_range_header in moto/s3/responses.py), so a download in 8 MiB
# ranges costs it 128 reads of the whole 1 GiB object and runs at about
# 12 MB/s on either side. On S3 both sides therefore ask for the file in
# ranges of BENCH_S3_DOWNLOAD_PART, by default the whole file: one GET,
# the one whole-object read moto makes for any request. Azure keeps the
# SDK's 8 MiB ranges, 4 at a time; Azurite reads only the range asked for.
#
# Settings (environment):
#   BENCH_BACKENDS  which (default "azure s3")
#   BENCH_WORKLOADS which of large and small (default "large small")
#   BENCH_OPS       which of upload and download (default "upload
#                   download"); a download measured still needs its
#                   upload, which is then made but not timed. A table of
#                   fewer cells than all is printed only: it needs
#                   BENCH_NO_WRITE=1, so that BENCHMARKS.md never holds a
#                   section with cells missing
#   BENCH_SIZE      bytes of the large file (default 1073741824, 1 GiB)
#   BENCH_FILES     number of small files (default 10000)
#   BENCH_SMALL     bytes of each small file (default 4096)
#   BENCH_REPS      runs per backend, alternating which side goes first
#                   (default 4, so that each side goes first as often);
#                   the table has the median of the runs' ratios
#   BENCH_S3_DOWNLOAD_PART  bytes per ranged GET of the large download
#                   from S3, on both sides (default BENCH_SIZE: one GET)
#   BENCH_NO_WRITE=1  print the table but leave BENCHMARKS.md alone
#
# Azurite and moto are the ones scripts/test installs into .tools/ (or
# WHARF_TEST_AZURITE and WHARF_TEST_MOTO).
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read -ra BACKENDS <<<"${BENCH_BACKENDS:-azure s3}"
read -ra WORKLOADS <<<"${BENCH_WORKLOADS:-large small}"
read -ra OPS <<<"${BENCH_OPS:-upload download}"
SIZE=${BENCH_SIZE:-1073741824}
FILES=${BENCH_FILES:-10000}
SMALL=${BENCH_SMALL:-4096}
REPS=${BENCH_REPS:-4}
TARGET_X=0.8
bench_require_names BENCH_BACKENDS backend "azure s3" "${BACKENDS[@]}"
bench_require_names BENCH_WORKLOADS workload "large small" "${WORKLOADS[@]}"
bench_require_names BENCH_OPS op "upload download" "${OPS[@]}"
for v in WORKLOADS OPS; do
  n=${v}[@]
  (( $(printf '%s\n' "${!n}" | sort -u | wc -l) == 2 )) || [[ ${BENCH_NO_WRITE:-} == 1 ]] ||
    { echo "BENCH_$v: a table with cells left out is for BENCH_NO_WRITE=1 only" >&2; exit 2; }
done
for v in SIZE FILES SMALL REPS; do bench_require_posint "BENCH_$v" "${!v}"; done
S3_DOWNLOAD_PART=${BENCH_S3_DOWNLOAD_PART:-$SIZE}
bench_require_posint BENCH_S3_DOWNLOAD_PART "$S3_DOWNLOAD_PART"

AZURITE=${WHARF_TEST_AZURITE:-$(compgen -G "$ROOT/.tools/azurite-*/node_modules/.bin/azurite-blob" | tail -n 1 || true)}
MOTO=${WHARF_TEST_MOTO:-$(compgen -G "$ROOT/.tools/moto-*/bin/moto_server" | tail -n 1 || true)}

bench_start_work wharf-storage
LOAD_START=$(bench_loadavg)
STARTED=$SECONDS
mkdir -p "$ROOT/bench/out"
RAW=$ROOT/bench/out/storage.jsonl
: >"$RAW"
go build -o "$WORK/storeload" ./bench/storeload

EMU_PID=""
# Azurite, asked to stop, takes a minute or more to close a store that held
# data; what it holds is thrown away, so it gets 5 s before it is killed.
stop_emulator() {
  [[ -n $EMU_PID ]] || return 0
  kill -TERM -- "-$EMU_PID" 2>/dev/null || kill -TERM "$EMU_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$EMU_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$EMU_PID" 2>/dev/null || kill -KILL "$EMU_PID" 2>/dev/null || true
  wait "$EMU_PID" 2>/dev/null || true
  EMU_PID=""
}
BENCH_EXIT_HOOKS+=(stop_emulator)

for backend in "${BACKENDS[@]}"; do
  port=$(bench_free_port)
  case $backend in
    azure)
      [[ -x $AZURITE ]] || { echo "Azurite not found: run scripts/test once, or set WHARF_TEST_AZURITE" >&2; exit 2; }
      mkdir -p "$WORK/azurite"
      setsid "$AZURITE" --blobHost 127.0.0.1 --blobPort "$port" --silent --skipApiVersionCheck --loose \
        --location "$WORK/azurite" >"$WORK/emulator.log" 2>&1 &
      endpoint=http://127.0.0.1:$port/devstoreaccount1 ;;
    s3)
      [[ -x $MOTO ]] || { echo "moto not found: run scripts/test once, or set WHARF_TEST_MOTO" >&2; exit 2; }
      setsid "$MOTO" -H 127.0.0.1 -p "$port" >"$WORK/emulator.log" 2>&1 &
      endpoint=http://127.0.0.1:$port ;;
  esac
  EMU_PID=$!
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  echo "==> $backend at $endpoint"
  mkdir -p "$WORK/files"
  part=()
  [[ $backend == s3 ]] && part=(-download-part "$S3_DOWNLOAD_PART")
  for (( rep = 1; rep <= REPS; rep++ )); do
    sdk_first=$(( rep % 2 == 0 ))
    echo "  $backend run $rep of $REPS, $([[ $sdk_first == 1 ]] && echo "the SDK's" || echo "Wharf's") side first ($(( SECONDS - STARTED )) s in)"
    "$WORK/storeload" -backend "$backend" -endpoint "$endpoint" -dir "$WORK/files" -tag "$rep" \
      -sdk-first="$([[ $sdk_first == 1 ]] && echo true || echo false)" \
      -size "$SIZE" -files "$FILES" -small "$SMALL" "${part[@]}" -workloads "${WORKLOADS[*]}" -ops "${OPS[*]}" >>"$RAW" 2> >(grep -v '^SDK ' >&2)
  done
  stop_emulator
done
LOAD_END=$(bench_loadavg)

TABLE=$WORK/table.md
python3 - "$RAW" "$TARGET_X" >"$TABLE" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
target = float(sys.argv[2])
# Each run measures both sides of a cell one after the other; their ratio
# is taken within the run, so that what changed between runs (the load
# from elsewhere, what the emulator holds) cancels, and the cell shows the
# median of the runs' ratios next to each side's median throughput.
runs = {}
for r in rows:
    runs.setdefault((r["backend"], r["workload"], r["op"]), {}).setdefault(r.get("rep", "1"), {})[r["side"]] = r
def median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2
names = {"azure": "Azure Blob (Azurite)", "s3": "S3 (moto)"}
print("| store | workload | op | Wharf MB/s | SDK MB/s | Wharf ÷ SDK | runs' ratios |")
print("|---|---|---|---:|---:|---:|---|")
worst = None
for (b, w, op), reps in runs.items():
    pairs = [p for p in reps.values() if "wharf" in p and "sdk" in p]
    if not pairs:
        continue
    ratios = [p["wharf"]["mbps"] / p["sdk"]["mbps"] for p in pairs]
    ratio = median(ratios)
    worst = ratio if worst is None else min(worst, ratio)
    r = pairs[0]["wharf"]
    label = "1 file, %.0f MiB" % (r["bytes"] / 2**20) if w == "large" else "%s files of %d B" % (format(r["files"], ","), r["bytes"] // r["files"])
    print("| %s | %s | %s | %.1f | %.1f | %.2f | %s |" % (names[b], label, op, median([p["wharf"]["mbps"] for p in pairs]),
        median([p["sdk"]["mbps"] for p in pairs]), ratio, " ".join("%.2f" % x for x in ratios)))
print()
print("Lowest Wharf ÷ SDK: %.2f (target ≥ %.1f): %s." % (worst, target, "met" if worst is not None and worst >= target else "NOT met"))
PY
cat "$TABLE"
echo "load average: $LOAD_START at the start, $LOAD_END at the end; $(( SECONDS - STARTED )) s"
echo "raw results: $RAW"

bench_stop_if_no_write

gomod() { go list -m -f '{{.Version}}' "$1" 2>/dev/null || echo unknown; }
SECTION=$WORK/section.md
{
  echo '<!-- bench:storage:start -->'
  echo '## storage: the blob store in Azure Blob and S3 vs the plain SDK'
  echo
  # shellcheck disable=SC2016 # the backquotes are markdown
  echo 'Reproduce: `bench/storage.sh` (settings: `BENCH_BACKENDS`, `BENCH_SIZE`, `BENCH_FILES`, `BENCH_SMALL`, `BENCH_REPS`, `BENCH_S3_DOWNLOAD_PART`).'
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Machine: $(bench_machine); load average (1/5/15 min) $LOAD_START at the start, $LOAD_END at the end"
  echo "- Took $(( SECONDS - STARTED )) s in all."
  echo "- Versions: Go $(go env GOVERSION); Wharf $(bench_wharf_rev); azblob $(gomod github.com/Azure/azure-sdk-for-go/sdk/storage/azblob), aws-sdk-go-v2 s3 $(gomod github.com/aws/aws-sdk-go-v2/service/s3); Azurite $(basename "$(dirname "$(dirname "$(dirname "$AZURITE")")")" | sed 's/azurite-//'), moto $(basename "$(dirname "$(dirname "$MOTO")")" | sed 's/moto-//')"
  echo "- Emulators on the same machine, on loopback: Azurite persisting to disk, moto in memory. Each side writes to its own container or bucket in the same emulator, in one run; $REPS run(s) per backend, alternating which side goes first (Wharf first in the first); each run's ratio is of its two sides, measured one after the other, and the table gives the median of the runs' ratios (and of each side's throughput)."
  echo "- Large file: Wharf's \`Put\` of the file (hashed, then 8 MiB parts, 4 in flight, under its digest) vs the SDK's parallel upload of it (Azure \`UploadFile\`, S3 \`manager.Uploader\`, same part size and concurrency); Wharf's \`CopyFile\` (what staging a job's input does: ranges in parallel into a file, hashed in order from memory as they land, checked against the digest at the end) vs the SDK's parallel download to a file (\`DownloadFile\`, \`manager.Downloader\`), ranges of the same size on both sides, up to 4 in flight: 8 MiB on Azurite; $S3_DOWNLOAD_PART bytes on moto, which reads the whole object to serve any range of it (so by default the file in one GET, one whole-object read)."
  echo "- Small files: 16 in flight; Wharf's \`Put\` (hashed, one request) and \`Open\` (read and verified) vs the SDK's one-request upload and download of each."
  echo
  cat "$TABLE"
  echo
  bench_notes storage
  echo '<!-- bench:storage:end -->'
} >"$SECTION"

bench_write_section storage "$SECTION"
