#!/usr/bin/env bash
# The GPU checks, ready for the session that is lent a device machine (an NVIDIA H100/H200 with
# PyTorch 2.11.0+cu130 under /opt/torch/.venv, no Rust, no network). Two halves:
#
#   scripts/gpu-check.sh prepare   # here: build model_bench (no FFmpeg), copy it into .devcarry/
#   then the device tool's run, with carry [".devcarry"] and timeout_s 300:
#       bash scripts/gpu-check.sh device
#
# On the device it runs the networks through the machine's own LibTorch 2.11.0 (the version this
# project pins): our binary links libtorch_cpu/libc10 by name, so LD_LIBRARY_PATH points it at the
# CUDA build's copies, and libtorch_cuda (which our CPU-only link leaves out) is preloaded so the
# CUDA kernels register. It prints and keeps under $OUT/gpu-check.log: the GPU, model_bench's
# precision check on the GPU (fp16 and bf16 against fp32, mean difference in levels of 255) and
# frames per second of both networks at 720×720, 1280×720 and 1920×1080, then 720×720 on the
# device's CPU for scale. Not yet covered: the steadier (OpenCV is not on the device image).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.devcarry
case "${1:-}" in
prepare)
  source scripts/env.sh
  cargo build --release -q -p stylize-model --bin model_bench
  mkdir -p "$CARRY"
  # Stripped: the carry must stay under 64 MiB (the weights are embedded; debug lines are not needed).
  strip -o "$CARRY/model_bench" target/release/model_bench
  du -sh "$CARRY" >&2
  echo "ready: device run with carry [\"$CARRY\"]: bash scripts/gpu-check.sh device" >&2
  ;;
device)
  OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
  TORCH_LIB=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/torch/lib 2>/dev/null | head -1 || true)
  [ -f "$TORCH_LIB/libtorch_cuda.so" ] || { echo "gpu-check: no libtorch_cuda.so under /opt/torch/.venv" >&2; exit 1; }
  NVIDIA_LIBS=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | tr '\n' ':')
  export LD_LIBRARY_PATH=$TORCH_LIB:$NVIDIA_LIBS${LD_LIBRARY_PATH:-}
  export LD_PRELOAD=$TORCH_LIB/libtorch_cuda.so
  BENCH=$CARRY/model_bench
  {
    nvidia-smi -L || true
    for size in 720x720 1280x720 1920x1080; do
      echo "== model_bench --device cuda --size $size"
      "$BENCH" --device cuda --size "$size" --frames 64 --precisions f16,bf16,f32
    done
    echo "== 720x720 on the device's CPU, for scale"
    "$BENCH" --device cpu --size 720x720 --frames 4 --precisions f32
  } 2>&1 | tee "$OUT/gpu-check.log"
  ;;
*)
  echo "usage: scripts/gpu-check.sh prepare | device" >&2; exit 2 ;;
esac
