#!/usr/bin/env bash
# Generates the sample clip(s) in samples/ with FFmpeg's own sources (nothing is downloaded).
# Idempotent: an existing, readable sample is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
TMP=samples/.tmp-$$.mp4
# A failed or interrupted ffmpeg leaves no partial temporary behind.
trap 'rm -f "$TMP"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
make_clip() { # name args...
  local out=samples/$1; shift
  if [ -s "$out" ] && ffprobe -v error -count_packets -show_entries stream=nb_read_packets "$out" >/dev/null 2>&1; then return 0; fi
  mkdir -p samples
  ffmpeg -loglevel error -y "$@" -movflags +faststart "$TMP" \
    || { echo "make-samples: ffmpeg could not generate $out" >&2; exit 1; }
  mv "$TMP" "$out"
}
# 4 s, 480×480, 30 fps, H.264 + AAC 48 kHz mono: a zooming fractal with a drifting colour wash.
make_clip sample.mp4 \
  -f lavfi -i "mandelbrot=size=480x480:rate=30:start_scale=2.5:end_scale=0.3:inner=mincol,hue=H=t*0.6" \
  -f lavfi -i "sine=frequency=330:sample_rate=48000,volume=0.4" \
  -t 4 -map 0:v -map 1:a -c:v libx264 -preset fast -crf 18 -pix_fmt yuv420p -c:a aac -b:a 96k -ac 1
