# Sourced by the other scripts: where setup put LibTorch, so cargo can build and link it.
export STYLIZE_CACHE=${STYLIZE_CACHE:-$HOME/.cache/stylize}
export LIBTORCH=${LIBTORCH:-$STYLIZE_CACHE/libtorch-2.11.0-cpu}
[ -x "$HOME/.cargo/bin/cargo" ] && case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH=$HOME/.cargo/bin:$PATH;; esac
true
