#!/usr/bin/env bash
# The few-label measurements of issue 20 (docs/study-real) in one go on a machine with a GPU
# (or any OpenCL device), as label-fraction studies run in parallel processes, each one seed of
# one study (`study --num-parts 5 --part-id K`); the reports are written afterwards (see the end).
#
# Usage: scripts/fewlabels-gpu.sh OUT [DATASET...]    (default: bacteria dsb cho; needs data/real,
# see scripts/make_real_data.py)
# Environment: REFINESEG (binary; default .build-static/gpu-check/refineseg, else
# .build/release/refineseg), JOBS (parallel processes, default 12), BUDGET (seconds after which
# no new study part starts, default 420), SEEDS (default 5), RUN_ARGS (the runs' settings).
# Studies per dataset D (all with the same RUN_ARGS):
#   OUT/D        fractions 0.1,0.2: scratch, semi, scratch+lac (the default recipe)
#   OUT/D-pa0    fractions 0.1,0.2: scratch with --percentile-augment 0 (before the fix)
#   OUT/D-full   fraction 1.0: scratch
# Priority: every dataset's D and D-pa0 parts first, then the D-full parts.
set -uo pipefail
out=${1:?usage: fewlabels-gpu.sh OUT [DATASET...]}
case $out in /*) ;; *) out=$PWD/$out ;; esac
shift
datasets=${*:-bacteria dsb cho}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"          # the studies name their data relative to the repository root
bin=${REFINESEG:-}
for candidate in "$here/.build-static/gpu-check/refineseg" "$here/.build/release/refineseg"; do
    [[ -z "$bin" && -x "$candidate" ]] && bin=$candidate
done
[[ -x "$bin" ]] || { echo "fewlabels-gpu: no refineseg binary" >&2; exit 1; }
# Carried libraries only where the machine lacks its own (as gpu-check.sh).
lib="$(dirname "$bin")/lib"
if [[ -d "$lib" ]]; then
    private="$out/lib"; mkdir -p "$private"
    for l in "$lib"/*.so*; do
        [[ -e "$l" ]] || continue
        /sbin/ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$(basename "$l") " || ln -sf "$l" "$private/$(basename "$l")"
    done
    export LD_LIBRARY_PATH="$private${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export REFINESEG_TUNE=${REFINESEG_TUNE:-0}     # no per-shape tuning: whole-image shapes vary
jobs=${JOBS:-12}; budget=${BUDGET:-420}; seeds=${SEEDS:-5}
run_args=${RUN_ARGS:---epochs 12 --steps-per-epoch 8 --size 64 --width 8 --batch 8 --lr 3e-3}
mkdir -p "$out"
started=$(date +%s)
"$bin" devices > "$out/devices.log" 2>&1
cat "$out/devices.log"

# One line per study: folder|extra arguments.
studies=()
for d in $datasets; do
    studies+=("$d|--data data/real/$d --fractions 0.1,0.2 --variants scratch,semi,scratch+lac")
    studies+=("$d-pa0|--data data/real/$d --fractions 0.1,0.2 --variants scratch --percentile-augment 0")
done
for d in $datasets; do studies+=("$d-full|--data data/real/$d --fractions 1.0 --variants scratch"); done

part_list="$out/parts.txt"; : > "$part_list"
for s in "${studies[@]}"; do
    for k in $(seq 0 $((seeds - 1))); do echo "${s%%|*}|${s#*|}|$k" >> "$part_list"; done
done
export bin out run_args seeds budget started
run_part() {
    local name=${1%%|*} rest=${1#*|}
    local args=${rest%|*} k=${rest##*|}
    if (( $(date +%s) - started > budget )); then echo "skip $name part $k (budget)"; return 0; fi
    local t0=$(date +%s)
    # shellcheck disable=SC2086
    "$bin" study --out "$out/$name" $args $run_args --seeds "$seeds" --num-parts "$seeds" --part-id "$k" \
        > "$out/$name.part$k.log" 2>&1
    local status=$?
    # Only eval/metrics.json is needed to report a finished run: the checkpoints stay here.
    find "$out/$name/runs" -name '*.safetensors' -delete 2>/dev/null
    echo "$name part $k: status $status in $(( $(date +%s) - t0 )) s"
}
export -f run_part
xargs -a "$part_list" -d '\n' -P "$jobs" -I{} bash -c 'run_part "$@"' _ {}
# The reports: the same study command without --num-parts/--part-id, run from the repository
# root on a copy of OUT once every part is done, reuses the runs and writes them (see
# docs/study-real/README.md).
echo "fewlabels-gpu: $(( $(date +%s) - started )) s"
