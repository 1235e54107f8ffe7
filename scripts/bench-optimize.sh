#!/usr/bin/env bash
# --method optimize, measured in one run:
#   1. the loss curve from three starts (the fast network's picture, the content frame as the
#      reference started, noise) on a frame of samples/sample.mp4 at SIDE (256) on the long side,
#      ITERATIONS (60) each, and how many iterations each start needs for the network start's loss;
#   2. seconds per iteration, and so per frame at the default iterations, at 720×720;
#   3. `stylize measure`'s VGG19 style and content distances of the fast network and of
#      --method optimize (default iterations, --steady 0 and 0.95) on FRAMES (6) frames of the
#      sample at SIDE, with the seconds each run took.
# Usage: scripts/bench-optimize.sh   (SIDE, ITERATIONS, FRAMES override the sizes)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
SIDE=${SIDE:-256}; ITERATIONS=${ITERATIONS:-60}; FRAMES=${FRAMES:-6}
WORK=${BENCH_DIR:-/tmp/stylize-bench}; mkdir -p "$WORK"
if [ ! -x target/release/stylize ]; then ./scripts/setup.sh; fi
cargo build --release -q --bins && cargo build --release -q -p stylize-core --example optimize_curve
export LD_LIBRARY_PATH=$LIBTORCH/lib:${LD_LIBRARY_PATH:-}
STYLIZE=target/release/stylize
CURVE=target/release/examples/optimize_curve
STYLE=samples/swirls.jpg

echo "== 1. loss curves at ${SIDE} px, ${ITERATIONS} iterations (frame 30 of samples/sample.mp4)"
$CURVE samples/sample.mp4 $STYLE "$SIDE" "$ITERATIONS" 30

echo
echo "== 2. cost at 720x720 (3 iterations a start; a frame costs the default --iterations, 60, times this)"
$CURVE samples/sample.mp4 $STYLE 720 3 30 | grep "an iteration"

echo
echo "== 3. distances to the style picture (${FRAMES} frames at ${SIDE} px)"
CLIP=$WORK/optimize-clip.mp4
ffmpeg -loglevel error -y -i samples/sample.mp4 -vf "scale=${SIDE}:-2" -frames:v "$FRAMES" \
  -c:v libx264 -crf 10 -c:a copy "$CLIP"
printf "%-34s %8s %10s %10s\n" "run" "seconds" "style" "content"
for run in "fast|" "optimize, --steady 0|--method optimize --steady 0" "optimize, --steady 0.95|--method optimize"; do
  name=${run%%|*}; args=${run#*|}
  out=$WORK/optimize-$(echo "$name" | tr -c 'a-z0-9' '_').mp4
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  $STYLIZE "$CLIP" --style $STYLE $args --crf 10 --overwrite -q -o "$out"
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  scores=$($STYLIZE measure "$CLIP" "$out" --style $STYLE --json)
  style=$(echo "$scores" | python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["style_distance"]["styled"])')
  content=$(echo "$scores" | python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["content_distance"])')
  printf "%-34s %8.1f %10s %10s\n" "$name" "$seconds" "$style" "$content"
done
