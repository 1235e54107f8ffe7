#!/usr/bin/env bash
# Regenerates styles/thumbs/NN-name.jpg: every preset painted on the middle frame of the bundled
# sample clip, by stylize itself (`styles --sheet ... --thumbs`). Run after renaming presets in
# styles/presets.json or changing the presets network. Needs a release build and ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${STYLIZE_BIN:-target/release/stylize}
SAMPLE=$("$BIN" demo --offline --print-input --quiet)
SHEET=${1:-$(mktemp -d)/presets-sheet.png}
rm -rf styles/thumbs
"$BIN" styles --sheet "$SAMPLE" --size 480 --thumbs styles/thumbs -o "$SHEET" --overwrite
