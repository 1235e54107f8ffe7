#!/usr/bin/env bash
# The GPU checks, ready for the session that is lent a device machine (an NVIDIA H100/H200 with
# PyTorch 2.11.0+cu130 under /opt/torch/.venv, no Rust, no FFmpeg, no network). Three steps:
#
#   scripts/gpu-check.sh prepare   # here: build, then fill .devcarry/model and .devcarry/worker
#   device run, carry [".devcarry/model"],  timeout_s 300:  bash scripts/gpu-check.sh models
#   device run, carry [".devcarry/worker"], timeout_s 300:  bash scripts/gpu-check.sh worker
#
# Each carry stays under the device's 64 MiB (with the working tree), so the two halves travel in
# two calls; run the second within the machine's 30 s warm window or it starts afresh.
#
# models: the GPU; both networks' frames per second at 720×720 and 1920×1080 in fp16 and fp32 at
#   batch 1, 8 and 32; how far fp16 is from fp32 and each is from the CPU's fp32 on the same frame;
#   the optimisation method's milliseconds an iteration and seconds a frame at both sizes.
# worker: the steadier's CPU cost alone (in order, and with the motion ahead on 1…N threads), then
#   an end-to-end cloud run through `dir:` on the GPU (a 720×720 clip with audio: the
#   coordinator cuts and joins, one `stylize worker --device cuda` styles, steadies and encodes),
#   its frames per second and each job's stage times (pieces, decode, network, steady, encode,
#   upload), then local mode on the same clip and on 5 s of 1920×1080, steadied and with --steady 0.
#
# The binaries link LibTorch's CPU libraries by name; on the device LD_LIBRARY_PATH points them at
# the CUDA build's copies and libtorch_cuda (which our CPU-only link leaves out) is preloaded so the
# CUDA kernels register. `stylize` also needs FFmpeg's and OpenCV's libraries, which travel with it
# (Debian 12's, all but the few every Linux base image has; `worker` first lists any it lacks).
# Everything printed is also kept under $OUT (gpu-models.log, gpu-worker.log).
#
# A rehearsal on a machine without CUDA: GPU_CHECK_DEVICE=cpu scripts/gpu-check.sh worker
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.devcarry
# Carry limit per call, less the working tree (~3 MB) and some room.
MAX_CARRY_BYTES=$((60 * 1024 * 1024))
DEVICE=${GPU_CHECK_DEVICE:-cuda}

# Libraries an Ubuntu or Debian base image has at the same soname (or newer, compatible ones), so
# they need not travel.
BASE_LIBS='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s|libz|libbz2|liblzma|libzstd|liblz4|libcrypto|libssl|libgcrypt|libgpg-error|libpcre2-8|libselinux|libmount|libblkid|libuuid|libsystemd|libcap|libgmp|libffi|libexpat|libudev)\.so'

carry_size_ok() { # folder
  local bytes; bytes=$(du -sb "$1" | cut -f1)
  echo "$1: $((bytes / 1024 / 1024)) MiB" >&2
  [ "$bytes" -le "$MAX_CARRY_BYTES" ] || { echo "gpu-check: $1 is over $((MAX_CARRY_BYTES / 1024 / 1024)) MiB" >&2; exit 1; }
}

prepare_models() {
  cargo build --release -q -p stylize-model --bin model_bench
  mkdir -p "$CARRY/model"
  # Stripped: the weights are embedded; debug lines are not needed there.
  strip -o "$CARRY/model/model_bench" target/release/model_bench
  cp weights/vgg19_q.safetensors "$CARRY/model/" # --method optimize's VGG19 (20 MB)
  carry_size_ok "$CARRY/model"
}

# The two binaries (`stylize` coordinates the presets run itself and starts `stylize-torch` for the
# worker and local mode), the shared libraries they need beyond LibTorch and a base image, and clips.
prepare_worker() {
  cargo build --release -q --bins
  cargo build --release -q -p stylize-motion --example steady_cost
  local stage=target/gpu-check-worker
  rm -rf "$stage" && mkdir -p "$stage/lib"
  strip -o "$stage/stylize" target/release/stylize
  strip -o "$stage/stylize-torch" target/release/stylize-torch
  strip -o "$stage/steady_cost" target/release/examples/steady_cost
  ldd target/release/stylize-torch | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
    grep -v -E "$BASE_LIBS" | grep -v -E '/libtorch[^/]*/lib/' |
    while read -r name path; do cp -L "$path" "$stage/lib/$name"; done
  stub_icu_data "$stage/lib"
  ffmpeg -loglevel error -y \
    -f lavfi -i "mandelbrot=size=720x720:rate=30:start_scale=2.5:end_scale=0.3:inner=mincol,hue=H=t*0.6" \
    -f lavfi -i "sine=frequency=330:sample_rate=48000,volume=0.4" -t 10 -map 0:v -map 1:a -preset medium -crf 32 \
    -c:v libx264 -pix_fmt yuv420p -c:a aac -b:a 64k "$stage/clip.mp4"
  ffmpeg -loglevel error -y \
    -f lavfi -i "mandelbrot=size=1920x1080:rate=30:start_scale=2.5:end_scale=0.3:inner=mincol,hue=H=t*0.6" \
    -f lavfi -i "sine=frequency=330:sample_rate=48000,volume=0.4" -t 5 -map 0:v -map 1:a -preset medium -crf 32 \
    -c:v libx264 -pix_fmt yuv420p -c:a aac -b:a 64k "$stage/clip1080.mp4"
  mkdir -p "$CARRY/worker"
  echo "compressing $(du -sh "$stage" | cut -f1) (a minute or two)…" >&2
  tar -C "$stage" -cf - . | xz --lzma2=preset=9e,dict=256MiB -T2 >"$CARRY/worker/bundle.tar.xz.tmp"
  mv "$CARRY/worker/bundle.tar.xz.tmp" "$CARRY/worker/bundle.tar.xz"
  carry_size_ok "$CARRY/worker"
}

# ICU's data library is 30 MB (7 compressed) that stylize never reads: only libxml2 links ICU, for
# FFmpeg's DASH and IMF demuxers. It travels as an empty ICU data package under the same name, so
# the loader is satisfied and ICU would report "no data" if anything ever asked it.
stub_icu_data() { # lib folder
  local lib; lib=$(ls "$1"/libicudata.so.* 2>/dev/null | head -1 || true)
  [ -n "$lib" ] || return 0
  local version=${lib##*.so.}
  printf '%s\n' \
    '/* An empty ICU common-data package: header (size, magic), data info, no entries. */' \
    'struct empty_package {' \
    '  unsigned short header_size; unsigned char magic1, magic2;' \
    '  unsigned short info_size, reserved; unsigned char big_endian, charset, uchar_size, reserved2;' \
    '  unsigned char format[4], format_version[4], data_version[4];' \
    '  unsigned char padding[8]; unsigned int entries;' \
    '};' \
    "const struct empty_package icudt${version}_dat = {32, 0xda, 0x27, 20, 0, 0, 0, 2, 0," \
    "  {'C', 'm', 'n', 'D'}, {1, 0, 0, 0}, {0, 0, 0, 0}, {0}, 0};" >"$1/icu-stub.c"
  cc -shared -fPIC -O2 -Wl,-soname,"$(basename "$lib")" -o "$lib" "$1/icu-stub.c"
  rm "$1/icu-stub.c"
}

# LibTorch with CUDA from the device's PyTorch (or, for a rehearsal, this machine's LibTorch).
use_torch() {
  local torch_lib
  torch_lib=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/torch/lib 2>/dev/null | head -1 || true)
  if [ -f "$torch_lib/libtorch_cuda.so" ]; then
    local nvidia_libs
    nvidia_libs=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | tr '\n' ':')
    export LD_LIBRARY_PATH=$torch_lib:$nvidia_libs${LD_LIBRARY_PATH:-}
    export LD_PRELOAD=$torch_lib/libtorch_cuda.so
  elif [ "$DEVICE" = cpu ] && [ -d "${LIBTORCH:-}/lib" ]; then
    export LD_LIBRARY_PATH=$LIBTORCH/lib:${LD_LIBRARY_PATH:-}
  else
    echo "gpu-check: no libtorch_cuda.so under /opt/torch/.venv" >&2; exit 1
  fi
}

run_models() {
  local bench=$CARRY/model/model_bench
  nvidia-smi -L || true
  for size in 720x720 1920x1080; do
    echo "== model_bench --device $DEVICE --size $size"
    "$bench" --device "$DEVICE" --size "$size" --frames 64 --batches 1,8,32 --precisions f16,f32 --against-cpu
    echo "== --method optimize at $size on $DEVICE"
    "$bench" --device "$DEVICE" --size "$size" --optimize "$CARRY/model/vgg19_q.safetensors"
  done
}

run_worker() {
  local dir=/tmp/gpu-check-worker
  rm -rf "$dir" && mkdir -p "$dir"
  xz -dc "$CARRY/worker/bundle.tar.xz" | tar -C "$dir" -xf -
  export LD_LIBRARY_PATH=$dir/lib:${LD_LIBRARY_PATH:-}
  local missing; missing=$(ldd "$dir/stylize" "$dir/stylize-torch" | grep "not found" || true)
  [ -z "$missing" ] || { echo "gpu-check: libraries this machine lacks:"; echo "$missing"; exit 1; }
  nvidia-smi -L || true
  echo "== the steadier alone (CPU): in order, then streamed on 1, 2, 4... threads"
  "$dir/steady_cost" 720 720 120
  "$dir/steady_cost" 1920 1080 40
  local bin=$dir/stylize clip=$dir/clip.mp4 storage=dir:$dir/storage
  "$bin" worker --cloud "$storage" --device "$DEVICE" --idle-exit 5 2>&1 | sed 's/^/  /' &
  local worker=$!
  local started=$SECONDS
  echo "== cloud run through $storage, one worker on $DEVICE (300 frames, 720x720)"
  "$bin" "$clip" --style preset:7 --cloud "$storage" -o "$dir/cloud.mp4" 2>&1 | tr '\r' '\n' | grep -v '^\s*$' | tail -5
  echo "   whole run: $((SECONDS - started)) s for 300 frames, coordinator included"
  wait "$worker" || true
  echo "== local mode on $DEVICE: the same clip, then 150 frames of 1920x1080; steadied, then --steady 0"
  local input steady
  for input in "$clip" "$dir/clip1080.mp4"; do
    for steady in 0.95 0; do
      "$bin" "$input" --style preset:7 --steady "$steady" -o "$dir/local.mp4" --overwrite --device "$DEVICE" 2>&1 |
        tr '\r' '\n' | grep -v '^\s*$' | tail -1
    done
  done
  ls -l "$dir/cloud.mp4" "$dir/local.mp4"
}

case "${1:-}" in
prepare)
  source scripts/env.sh
  prepare_models
  prepare_worker
  echo "ready: device run carry [\"$CARRY/model\"]: bash scripts/gpu-check.sh models;" \
    "then carry [\"$CARRY/worker\"]: bash scripts/gpu-check.sh worker" >&2
  ;;
models | worker)
  OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
  use_torch
  "run_$1" 2>&1 | tee "$OUT/gpu-$1.log"
  ;;
*)
  echo "usage: scripts/gpu-check.sh prepare | models | worker" >&2; exit 2 ;;
esac
