#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite: op registry on the CPU reference
# and on every OpenCL device found (PoCL here), gradient checks, IO, training cross-checks;
# then the small-shape op registry on Oclgrind's simulated GPU with its race and API checks
# (scripts/oclgrind-check.sh; it runs when no arguments narrow the test run, OCLGRIND=0 skips
# it, OCLGRIND=1 forces it). Arguments go to `swift test` (e.g. --filter OpRegistryTests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$HOME/.cache/refineseg/pocl}"
mkdir -p "$POCL_CACHE_DIR"
swift build --build-tests
swift test --skip-build "$@"
if [[ "${OCLGRIND:-}" == 1 || ( $# == 0 && "${OCLGRIND:-}" != 0 ) ]]; then
    scripts/oclgrind-check.sh
fi
