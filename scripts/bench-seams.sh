#!/usr/bin/env bash
# Seams of steadied segments: a cloud run with --transport segments (workers steady their own jobs,
# each warming up over the 60 frames before its range) against the same run locally, on the clips
# bench-steady.sh uses (it fetches them; run it once first, or this script does). Jobs of JOB
# frames (30), two workers, through `--cloud dir:`.
#
# Prints, per clip: the warping error (×10⁻³, `stylize measure`'s per-pair errors) of the pairs
# that straddle a job boundary and of all other pairs, for the local and the cloud output, and how
# far the cloud output's frames are from local mode's (mean absolute difference, 0–255).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
WORK=${BENCH_DIR:-/tmp/stylize-bench}; mkdir -p "$WORK"
JOB=${JOB:-30}
STYLE=${STYLE:-preset:19}
[ -s "$WORK/bench90.mp4" ] && [ -s "$WORK/bikes.mp4" ] || { echo "bench-seams: clips missing: run scripts/bench-steady.sh first" >&2; exit 1; }
cargo build --release -q --bins
STYLIZE=$PWD/target/release/stylize

printf '%-10s %6s %14s %14s %14s %14s %12s\n' clip jobs local-seams local-rest cloud-seams cloud-rest vs-local
for clip in bench90 bikes; do
  in="$WORK/$clip.mp4" local="$WORK/seams-$clip-local.mp4" cloud="$WORK/seams-$clip-cloud.mp4"
  store=$(mktemp -d /tmp/stylize-seams.XXXXXX)
  "$STYLIZE" "$in" --style "$STYLE" -o "$local" --overwrite --quiet
  pids=()
  for w in 0 1; do
    "$STYLIZE" worker --cloud "dir:$store" --worker-id "w$w" --idle-exit 5 --poll-interval 0.2 2>"$store/w$w.log" &
    pids+=($!)
  done
  "$STYLIZE" "$in" --style "$STYLE" --cloud "dir:$store" --transport segments --frames-per-job "$JOB" \
    -o "$cloud" --overwrite --quiet
  for p in "${pids[@]}"; do wait "$p" || true; done
  "$STYLIZE" measure "$in" "$local" --json >"$WORK/seams-local.json"
  "$STYLIZE" measure "$in" "$cloud" --json >"$WORK/seams-cloud.json"
  diff=$(python3 - "$local" "$cloud" <<'PY'
import subprocess, sys
def frames(path):
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         check=True, capture_output=True).stdout
    return out
a, b = frames(sys.argv[1]), frames(sys.argv[2])
print(f"{sum(abs(x - y) for x, y in zip(a, b)) / max(1, len(a)):.2f}")
PY
)
  python3 - "$clip" "$JOB" "$diff" "$WORK/seams-local.json" "$WORK/seams-cloud.json" <<'PY'
import json, sys
clip, job, diff = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def split(path):
    errors = json.load(open(path))["pair_warp_errors"]
    # Pair i joins frames i and i+1: it straddles a boundary when i+1 starts a job.
    seams = [e for i, e in enumerate(errors) if e is not None and (i + 1) % job == 0]
    rest = [e for i, e in enumerate(errors) if e is not None and (i + 1) % job != 0]
    mean = lambda v: sum(v) / len(v) * 1e3 if v else float("nan")
    return mean(seams), mean(rest), len(seams)
ls, lr, n = split(sys.argv[4])
cs, cr, _ = split(sys.argv[5])
print(f"{clip:<10} {n + 1:6d} {ls:14.2f} {lr:14.2f} {cs:14.2f} {cr:14.2f} {diff:>12}")
PY
  rm -rf "$store"
done
