#!/usr/bin/env bash
# README command 1: set everything up, then style the sample clip with the sample style picture.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./target/release/stylize samples/sample.mp4 --style samples/swirls.jpg -o samples/sample.styled.mp4 --overwrite
echo "styled video: $PWD/samples/sample.styled.mp4"
