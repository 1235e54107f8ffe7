#!/usr/bin/env bash
# README command 2: set everything up, then run the whole test suite (unit, integration, Azurite-backed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
[ -x scripts/azurite.sh ] && ./scripts/azurite.sh install
cargo test --release --workspace --no-fail-fast "$@"
