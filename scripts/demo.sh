#!/usr/bin/env bash
# Sets up (scripts/setup.sh), builds RefineSeg in release mode and runs the main job on the
# sample nuclei data: train at 20 % and 100 % labels, evaluate both, annotate the test images.
# Extra arguments go to `refineseg demo` (e.g. --device 1, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$HOME/.cache/refineseg/pocl}"
mkdir -p "$POCL_CACHE_DIR"
swift build -c release
exec .build/release/refineseg demo "$@"
