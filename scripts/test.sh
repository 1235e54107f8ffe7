#!/usr/bin/env bash
# README command 2: set everything up, then run the whole test suite (unit, integration, Azurite-backed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
# The Azurite-backed tests need the pinned Azurite in the cache; a failed install stops here
# rather than surfacing later as confusing test failures.
bash scripts/azurite.sh install >/dev/null \
  || { echo "test: scripts/azurite.sh install failed (Azurite is needed by the cloud tests)" >&2; exit 1; }
cargo test --release --workspace --no-fail-fast "$@"
