# shellcheck shell=bash
# Sourced by the other scripts: where setup put LibTorch, so cargo can build and link it,
# and cargo on PATH when rustup installed it but this shell has not sourced ~/.cargo/env.
export STYLIZE_CACHE=${STYLIZE_CACHE:-$HOME/.cache/stylize}
export LIBTORCH=${LIBTORCH:-$STYLIZE_CACHE/libtorch-2.11.0-cpu}
if ! command -v cargo >/dev/null; then
  if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"
  elif [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH=$HOME/.cargo/bin:$PATH; fi
fi
true
