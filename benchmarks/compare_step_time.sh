#!/usr/bin/env bash
# Compare one DFR-UNet training step: PyTorch on the CPU versus refineseg.
#
# Usage: benchmarks/compare_step_time.sh [OUTDIR]   (default OUTDIR: benchmarks/results)
# Environment: THREADS (torch threads, default 2), STEPS (20), WARMUP (3),
#              BATCH (8), SIZE (128), WIDTH (16).
# Writes OUTDIR/torch_nchw.json, OUTDIR/torch_channels_last.json (pytorch_peer.py's keys:
# step_ms_median, step_ms_min, step_ms_max, images_per_second, ...) and prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results}
THREADS=${THREADS:-2}; STEPS=${STEPS:-20}; WARMUP=${WARMUP:-3}
BATCH=${BATCH:-8}; SIZE=${SIZE:-128}; WIDTH=${WIDTH:-16}
mkdir -p "$OUT"
common=(--batch "$BATCH" --size "$SIZE" --width "$WIDTH" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS")

# ---- PyTorch half ---------------------------------------------------------------------
echo "== PyTorch (CPU, $THREADS threads), NCHW"
python3 benchmarks/pytorch_peer.py "${common[@]}" --json "$OUT/torch_nchw.json"
echo "== PyTorch (CPU, $THREADS threads), channels-last"
python3 benchmarks/pytorch_peer.py "${common[@]}" --channels-last --json "$OUT/torch_channels_last.json"

# ---- refineseg half (finished by the lead) --------------------------------------------
# TODO(lead): run refineseg's training-step benchmark with the same settings and write
#             "$OUT/refineseg.json" with at least step_ms_median and images_per_second.

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = []
for name in ("torch_nchw", "torch_channels_last", "refineseg"):
    path = os.path.join(out, name + ".json")
    if os.path.exists(path):
        with open(path) as f:
            r = json.load(f)
        rows.append((name, r["step_ms_median"], r.get("step_ms_min", float("nan")),
                     r.get("step_ms_max", float("nan")), r["images_per_second"]))
print(f"{'run':<22}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'img/s':>8}")
for name, med, lo, hi, ips in rows:
    print(f"{name:<22}{med:>11.1f}{lo:>9.1f}{hi:>9.1f}{ips:>8.2f}")
PY
