#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite: op registry on the CPU reference
# and on every OpenCL device found (PoCL here), gradient checks, IO, training cross-checks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$HOME/.cache/refineseg/pocl}"
mkdir -p "$POCL_CACHE_DIR"
swift build --build-tests
swift test --skip-build "$@"
