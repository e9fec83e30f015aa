#!/usr/bin/env bash
# The GPU code path checked without a GPU: runs the small-shape subset of the op registry
# (`refineseg check --small`: every op family, forward and backward against the CPU reference)
# on Oclgrind's simulated GPU device (it reports itself as a GPU with real local memory and
# work-groups up to 1024, so refineseg takes its GPU code path: local-memory conv kernels) with
# its data-race and API checks. The conv tuner is off (REFINESEG_TUNE=0: each pass runs its
# default tile configuration, as the simulator's timings would pick nothing useful and every
# candidate is one more build and run); OCLGRIND_TUNE=1 runs every tuner candidate too.
# Fails when a case fails, when Oclgrind reports anything (out-of-bounds access, data race, API
# misuse, ...), or when it runs past OCLGRIND_TIMEOUT seconds (default 2400: the run takes about 300 s on a quiet 2-core machine and three times that when the cores are shared; the guard is for a hang, not a time target).
# The uninitialized-value plugin is not used: it aborts on LLVM's `freeze` instruction.
#
# Usage: scripts/oclgrind-check.sh [REFINESEG_BINARY] [extra `refineseg check` arguments]
#        (default binary: .build/debug/refineseg; e.g. `scripts/oclgrind-check.sh "" --op conv2d`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/refineseg}
shift || true
if ! command -v oclgrind >/dev/null 2>&1; then
    echo "oclgrind-check: oclgrind is not installed (scripts/setup.sh installs it: apt-get install oclgrind)" >&2
    exit 1
fi
if [[ ! -x "$bin" ]]; then echo "oclgrind-check: $bin is not built (swift build)" >&2; exit 1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
report="$work/oclgrind.log"
# Under oclgrind every OpenCL call goes to the simulator (its runtime is preloaded), so device 0
# is the simulated GPU. The tuner's winners (timed on a simulator) stay out of the user's cache.
export XDG_CACHE_HOME="$work/cache"
if [[ "${OCLGRIND_TUNE:-0}" == 1 ]]; then export REFINESEG_TUNE=1; else export REFINESEG_TUNE=0; fi
start=$(date +%s)
status=0
timeout "${OCLGRIND_TIMEOUT:-2400}" stdbuf -oL oclgrind --data-races --check-api --log "$report" \
    "$bin" check --small --device 0 "$@" || status=$?
elapsed=$(( $(date +%s) - start ))
if [[ -s "$report" ]]; then
    echo "oclgrind-check: Oclgrind reported problems (first 60 lines of $(wc -l < "$report")):" >&2
    head -n 60 "$report" >&2
    exit 1
fi
if [[ $status == 124 ]]; then
    echo "oclgrind-check: timed out after ${OCLGRIND_TIMEOUT:-2400} s" >&2
    exit 1
fi
if [[ $status != 0 ]]; then
    echo "oclgrind-check: refineseg check --small failed under Oclgrind (status $status)" >&2
    exit "$status"
fi
echo "oclgrind-check: no Oclgrind report, every small case passed (${elapsed} s)"
