#!/usr/bin/env bash
# Compare one DFR-UNet training step: refineseg (OpenCL) versus PyTorch on the CPU, one after
# the other in the same run with the same settings, and print the refineseg / PyTorch ratio.
# A benchmark, never a test: nothing here asserts a time.
#
# Usage: benchmarks/compare_step_time.sh [OUTDIR]   (default OUTDIR: benchmarks/results)
# Environment: THREADS (torch threads, default 2), STEPS (20), WARMUP (3), BATCH (8), SIZE (128),
#              WIDTH (16), DEVICE (refineseg --device, default: refineseg's default device),
#              EVAL=1 (time inference only, both sides), SKIP_BUILD=1 (reuse .build/release).
# Writes OUTDIR/refineseg.json (`refineseg bench train --json`), OUTDIR/torch_nchw.json and
# OUTDIR/torch_channels_last.json (benchmarks/pytorch_peer.py); all carry step_ms_median,
# step_ms_min, step_ms_max, step_ms_p90, images_per_second and the GFLOP/s of the same FLOP count.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results}
THREADS=${THREADS:-2}; STEPS=${STEPS:-20}; WARMUP=${WARMUP:-3}
BATCH=${BATCH:-8}; SIZE=${SIZE:-128}; WIDTH=${WIDTH:-16}
mkdir -p "$OUT"
common=(--batch "$BATCH" --size "$SIZE" --width "$WIDTH" --steps "$STEPS" --warmup "$WARMUP")
mode=()
if [[ "${EVAL:-0}" == 1 ]]; then mode=(--eval); fi

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"

# ---- refineseg --------------------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "== swift build -c release"
    swift build -c release
fi
device=()
if [[ -n "${DEVICE:-}" ]]; then device=(--device "$DEVICE"); fi
rm -f "$OUT/refineseg.json"
echo "== refineseg bench train ${device[*]}"
if ! .build/release/refineseg bench train "${common[@]}" "${mode[@]}" "${device[@]}" --json "$OUT/refineseg.json"; then
    echo "refineseg bench train failed; the table below has the PyTorch rows only" >&2
fi

# ---- PyTorch ----------------------------------------------------------------------------
echo "== PyTorch (CPU, $THREADS threads), NCHW"
python3 benchmarks/pytorch_peer.py "${common[@]}" "${mode[@]}" --threads "$THREADS" --json "$OUT/torch_nchw.json"
echo "== PyTorch (CPU, $THREADS threads), channels-last"
python3 benchmarks/pytorch_peer.py "${common[@]}" "${mode[@]}" --threads "$THREADS" --channels-last --json "$OUT/torch_channels_last.json"

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = {}
for name in ("refineseg", "torch_nchw", "torch_channels_last"):
    path = os.path.join(out, name + ".json")
    if os.path.exists(path):
        with open(path) as f:
            rows[name] = json.load(f)
def gflops(r):
    return r.get("gflops", r.get("gflops_per_second", float("nan")))
print()
print(f"{'run':<22}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'p90 ms':>9}{'img/s':>8}{'GFLOP/s':>9}")
for name, r in rows.items():
    print(f"{name:<22}{r['step_ms_median']:>11.1f}{r['step_ms_min']:>9.1f}{r['step_ms_max']:>9.1f}"
          f"{r.get('step_ms_p90', float('nan')):>9.1f}{r['images_per_second']:>8.2f}{gflops(r):>9.1f}")
if "refineseg" in rows:
    mine = rows["refineseg"]["step_ms_median"]
    for name in ("torch_nchw", "torch_channels_last"):
        if name in rows:
            print(f"refineseg / {name} step time: {mine / rows[name]['step_ms_median']:.2f}x"
                  f" (below 1: refineseg is faster)")
    dev = rows["refineseg"].get("device", {})
    print(f"refineseg device: {dev.get('name', '?')}; commit {rows['refineseg'].get('git_commit', '?')[:12]}")
else:
    print("no refineseg.json: no ratio")
PY
