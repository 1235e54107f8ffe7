#!/usr/bin/env bash
# The codecs side by side on bench.sh's clip (720×720, 30 fps, 90 frames, audio): for each
# `--codec`, a whole stylize run (preset:0, --steady 0, so the network and the encoder are what is
# timed) and the encoder alone on the same styled frames (stylize's own settings for that codec,
# through the ffmpeg CLI, from a lossless styled master), with the bytes each frame takes.
# Prints one table; everything is measured in this one run.
# Usage: scripts/bench-codecs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export SVT_LOG=1 # SVT-AV1 prints its configuration otherwise
WORK=${BENCH_DIR:-/tmp/stylize-bench}; mkdir -p "$WORK"
cargo build --release -q --bins
S=target/release/stylize
CLIP=$WORK/bench90.mp4
[ -s "$CLIP" ] || ffmpeg -loglevel error -y -f lavfi -i "mandelbrot=size=720x720:rate=30:start_scale=2:end_scale=0.5,hue=H=t" \
  -f lavfi -i "sine=f=440:sample_rate=48000" -frames:v 90 -map 0:v -map 1:a -c:v libx264 -preset fast -crf 18 \
  -pix_fmt yuv420p -c:a aac -ac 1 -shortest "$CLIP"
# A lossless styled master, the encoders' common input.
MASTER=$WORK/codecs-master.mkv
[ -s "$MASTER" ] || $S "$CLIP" --style preset:0 --steady 0 --codec ffv1 --pixel-format yuv444p -o "$MASTER" --overwrite --quiet

seconds() { python3 -c "import sys, time, subprocess; t = time.time(); subprocess.run(sys.argv[1:], check=True); print(f'{time.time() - t:.2f}')" "$@"; }
# codec, stylize's container, the ffmpeg CLI's encoder options matching stylize's (see src: crates/media/src/codecs.rs)
CASES=(
  "h264|mp4|-c:v libx264 -preset fast -crf 18 -pix_fmt yuv420p"
  "hevc|mp4|-c:v libx265 -preset fast -crf 18 -pix_fmt yuv420p -x265-params log-level=error"
  "av1|mp4|-c:v libsvtav1 -preset 8 -crf 22 -pix_fmt yuv420p"
  "prores|mov|-c:v prores_ks -profile:v 3 -pix_fmt yuv422p10le"
  "ffv1|mkv|-c:v ffv1 -level 3 -slicecrc 1 -g 1 -pix_fmt yuv444p"
)
printf '%-8s %16s %12s %18s %12s\n' codec "stylize s (fps)" "encoder fps" "encoder CPU ms/fr" "KB/frame"
for case in "${CASES[@]}"; do
  IFS='|' read -r codec ext opts <<<"$case"
  out=$WORK/codecs-$codec.$ext
  whole=$(seconds $S "$CLIP" --style preset:0 --steady 0 --codec "$codec" -o "$out" --overwrite --quiet)
  enc_out=$WORK/codecs-enc-$codec.$ext
  # shellcheck disable=SC2086 # $opts is a list of options
  /usr/bin/time -f "%e %U %S" -o "$WORK/codecs-$codec.time" ffmpeg -loglevel error -y -i "$MASTER" -an $opts "$enc_out"
  read -r wall user sys <"$WORK/codecs-$codec.time"
  video_bytes=$(ffprobe -v error -select_streams v:0 -show_entries packet=size -of csv=p=0 "$out" | awk '{s += $1} END {print s}')
  python3 -c "
w, wall, cpu, kb = $whole, $wall, $user + $sys, $video_bytes / 90 / 1000
print(f'{\"$codec\":<8} {w:9.2f} ({90 / w:4.1f}) {90 / max(wall, 1e-3):12.1f} {cpu * 1000 / 90:18.1f} {kb:12.1f}')"
done
echo "(720x720, 90 frames, $(nproc) cores; stylize's defaults otherwise: CRF 18, preset fast, ProRes HQ)"
