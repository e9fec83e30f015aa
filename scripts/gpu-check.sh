#!/usr/bin/env bash
# First run on a GPU machine: one script, no Swift needed. Finds the vendor's OpenCL driver,
# makes the OpenCL loader see it, then runs (each step under its own time limit, all of it in
# under 8 minutes):
#   refineseg devices, refineseg check (op registry vs the CPU reference), refineseg bench kernels,
#   refineseg bench train (training step), refineseg bench train --eval (inference step), and, when
#   PyTorch with CUDA/ROCm is importable, PyTorch's training step on the GPU (benchmarks/pytorch_peer.py).
# Writes OUT/summary.json (every step: command, status, seconds, log file, result file) and
# OUT/*.log, OUT/*.json; prints the folder at the end. Exit status 0 when every step that ran passed.
#
# Usage: gpu-check.sh [OUT]           (default OUT: gpu-check-<host>-<UTC time>)
# Layout it expects (scripts/package-gpu-check.sh builds it): next to this script
#   refineseg          the release binary (Swift runtime linked in statically)
#   lib/               libOpenCL.so.1 (ocl-icd) and the C libraries refineseg links against, used
#                      only for those the machine lacks
#   pytorch_peer.py, torch_dfrunet.py   PyTorch's side (optional)
# In a source checkout it falls back to .build/release/refineseg and the repository's scripts.
# Environment: REFINESEG (binary), DEVICE (refineseg --device; default: refineseg's default, the
# first GPU), BUDGET (seconds for the steps, default 420; with the PyTorch probe at most 480 in all), ICD_LIBRARY (path of a vendor OpenCL
# library to register when the loader lists none), PYTHON (default python3).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
started=$(date +%s)
budget=${BUDGET:-420}
out=${1:-gpu-check-$(hostname -s 2>/dev/null || echo host)-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out" || { echo "gpu-check: cannot create $out" >&2; exit 1; }
out=$(cd "$out" && pwd)
log() { echo "== $*" | tee -a "$out/gpu-check.log"; }
steps_json=()

# ---- the binary and its libraries --------------------------------------------------------
bin=${REFINESEG:-}
for candidate in "$here/refineseg" "$here/../.build/release/refineseg"; do
    [[ -z "$bin" && -x "$candidate" ]] && bin=$candidate
done
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "gpu-check: no refineseg binary next to this script (build the folder with scripts/package-gpu-check.sh) or in .build/release" >&2
    exit 1
fi
peer=""
for candidate in "$here/pytorch_peer.py" "$here/../benchmarks/pytorch_peer.py"; do
    [[ -z "$peer" && -f "$candidate" ]] && peer=$candidate
done
# Carried libraries are used only where the machine has none of its own (a vendor driver may
# need the system's newer libstdc++ and friends): link the missing ones into a private folder.
private="$out/lib"
mkdir -p "$private"
if [[ -d "$here/lib" ]]; then
    for lib in "$here"/lib/*.so*; do
        [[ -e "$lib" ]] || continue
        name=$(basename "$lib")
        if ! /sbin/ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$name "; then
            ln -sf "$lib" "$private/$name"
            log "using the carried $name (the system has none)"
        fi
    done
fi
export LD_LIBRARY_PATH="$private${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(hostname 2>/dev/null)"
    echo "kernel: $(uname -sr)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs"
    echo "glibc: $(ldd --version 2>/dev/null | head -1)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /'
    command -v rocm-smi >/dev/null && rocm-smi --showproductname 2>&1 | grep -i 'card series' | sed 's/^/rocm-smi: /'
    echo "binary: $bin"
    ldd "$bin" 2>&1 | sed 's/^/ldd: /'
} > "$out/machine.txt"
if grep -q "not found" "$out/machine.txt"; then
    log "missing libraries: $(grep 'not found' "$out/machine.txt" | sed 's/^ldd: *//' | tr '\n' ' ')"
fi

# ---- the OpenCL driver ---------------------------------------------------------------------
# Vendor libraries, in the places NVIDIA (incl. containers' /usr/local/nvidia), ROCm and Intel put them.
find_vendor_libraries() {
    {
        /sbin/ldconfig -p 2>/dev/null | grep -iE 'libnvidia-opencl\.so|libamdocl64\.so|libamdocl\.so|libigdrcl\.so|libintelocl\.so' \
            | awk '{print $NF}'
        ls /usr/local/nvidia/lib64/libnvidia-opencl.so* /usr/local/nvidia/lib/libnvidia-opencl.so* \
           /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so* /usr/lib64/libnvidia-opencl.so* \
           /opt/rocm*/lib/libamdocl64.so /opt/rocm*/opencl/lib/libamdocl64.so /opt/rocm*/lib/libamdocl64.so.* \
           /usr/lib/x86_64-linux-gnu/intel-opencl/libigdrcl.so /usr/lib64/intel-opencl/libigdrcl.so \
           /opt/intel/oneapi/lib/libintelocl.so /opt/intel/oneapi/compiler/latest/lib/libintelocl.so 2>/dev/null
    } | while read -r lib; do readlink -f "$lib"; done | awk '!seen[$0]++'     # one entry per real file
}
vendors=$(find_vendor_libraries)
{
    echo "vendor OpenCL libraries found:"; echo "${vendors:-  (none)}" | sed 's/^/  /'
    echo "ICD files in /etc/OpenCL/vendors:"; for f in /etc/OpenCL/vendors/*.icd; do [[ -e "$f" ]] && echo "  $f: $(cat "$f")"; done
    echo "libOpenCL.so.1 (loader): $(/sbin/ldconfig -p 2>/dev/null | grep -m1 'libOpenCL.so.1 ' | awk '{print $NF}')"
} > "$out/opencl.txt"

ICD_LIBRARY=${ICD_LIBRARY:-}
devices_status=0
run_devices() { devices_status=0; timeout 60 "$bin" devices > "$out/devices.log" 2>&1 || devices_status=$?; }
run_devices
if ! grep -q ', GPU$' "$out/devices.log" && [[ -n "$vendors$ICD_LIBRARY" ]]; then
    # The loader lists no GPU although a vendor library is installed: register the vendor
    # libraries in a private ICD folder (OCL_ICD_VENDORS; the system's /etc/OpenCL/vendors is
    # left as it is, its files are copied alongside).
    icd="$out/icd"
    mkdir -p "$icd"
    for f in /etc/OpenCL/vendors/*.icd; do [[ -e "$f" ]] && cp "$f" "$icd/"; done
    n=0
    for lib in ${ICD_LIBRARY:-} $vendors; do
        [[ -e "$lib" ]] || continue
        n=$((n + 1))
        echo "$lib" > "$icd/refineseg-$n-$(basename "$lib" | cut -d. -f1).icd"
        log "registered $lib in $icd (OCL_ICD_VENDORS)"
    done
    export OCL_ICD_VENDORS="$icd"
    run_devices
fi
log "refineseg devices (status $devices_status)"
cat "$out/devices.log" | tee -a "$out/gpu-check.log"
steps_json+=("{\"name\": \"devices\", \"status\": \"$devices_status\", \"command\": \"$bin devices\", \"log\": \"devices.log\", \"gpu_listed\": $(grep -q ', GPU$' "$out/devices.log" && echo true || echo false)}")
if [[ $devices_status != 0 ]]; then
    log "refineseg devices failed: no OpenCL device can be used; see $out/opencl.txt and $out/machine.txt"
    any_failed_devices=1
fi

# ---- the steps -----------------------------------------------------------------------------
device=()
[[ -n "${DEVICE:-}" ]] && device=(--device "$DEVICE")
any_failed=${any_failed_devices:-0}
# step NAME LIMIT RESULT_FILE COMMAND...: runs COMMAND under min(LIMIT, what is left of BUDGET).
step() {
    local name=$1 limit=$2 result=$3
    shift 3
    local left=$(( budget - ($(date +%s) - started) ))
    (( limit > left )) && limit=$left
    local status seconds t0=$(date +%s)
    if (( limit < 10 )); then
        log "$name: skipped, the time budget of ${budget} s is spent"
        status=skipped; seconds=0
    else
        log "$name (limit ${limit} s): $*"
        timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
        status=$?
        seconds=$(( $(date +%s) - t0 ))
        tail -n 25 "$out/$name.log" | tee -a "$out/gpu-check.log"
        if [[ $status == 124 || $status == 137 ]]; then log "$name: TIMED OUT after ${limit} s"; any_failed=1
        elif [[ $status != 0 ]]; then log "$name: FAILED (status $status)"; any_failed=1
        else log "$name: ok (${seconds} s)"; fi
    fi
    local escaped
    escaped=$(printf '%s ' "$@" | sed 's/\\/\\\\/g; s/"/\\"/g')
    steps_json+=("{\"name\": \"$name\", \"status\": \"$status\", \"seconds\": $seconds, \"limit_s\": $limit, \"command\": \"${escaped% }\", \"log\": \"$name.log\", \"result\": $( [[ -n "$result" && -s "$out/$result" ]] && echo "\"$result\"" || echo null )}")
}

# The small-shape subset first (every op family, seconds): correctness on this driver is shown
# even when the full registry (large shapes, and the CPU reference computing each of them on
# one core) does not finish in its limit. The full run prints every row, so its log shows how
# far it got.
step check-small 90 check-small.json "$bin" check "${device[@]}" --small --json "$out/check-small.json"
step check ${CHECK_LIMIT:-150} check.json "$bin" check "${device[@]}" --json "$out/check.json"
step bench-kernels 120 bench-kernels.json "$bin" bench kernels "${device[@]}" --repeat 5 --json "$out/bench-kernels.json"
step bench-train 70 bench-train.json "$bin" bench train "${device[@]}" --steps 10 --json "$out/bench-train.json" \
    --roofline-svg "$out/roofline-train.svg"
step bench-eval 40 bench-eval.json "$bin" bench train "${device[@]}" --eval --steps 10 --json "$out/bench-eval.json"

py=${PYTHON:-python3}
torch_gpu=""
if [[ -n "$peer" ]] && command -v "$py" >/dev/null 2>&1; then
    torch_gpu=$(timeout 60 "$py" -c 'import torch; print("cuda" if torch.cuda.is_available() else "")' 2>/dev/null)
fi
if [[ "$torch_gpu" == cuda ]]; then
    step torch-train 60 torch-train.json "$py" "$peer" --device cuda --steps 10 --json "$out/torch-train.json"
    step torch-eval 30 torch-eval.json "$py" "$peer" --device cuda --eval --steps 10 --json "$out/torch-eval.json"
else
    log "PyTorch with a GPU is not importable here ($py); its step is not measured"
fi

# ---- summary -------------------------------------------------------------------------------
total=$(( $(date +%s) - started ))
{
    echo "{"
    echo "  \"date\": \"$(date -u +%FT%TZ)\","
    echo "  \"host\": \"$(hostname 2>/dev/null)\","
    echo "  \"binary\": \"$bin\","
    echo "  \"ocl_icd_vendors\": \"${OCL_ICD_VENDORS:-}\","
    echo "  \"seconds\": $total,"
    echo "  \"budget_s\": $budget,"
    echo "  \"torch_gpu\": $( [[ "$torch_gpu" == cuda ]] && echo true || echo false ),"
    echo "  \"steps\": ["
    for i in "${!steps_json[@]}"; do
        sep=","; (( i == ${#steps_json[@]} - 1 )) && sep=""
        echo "    ${steps_json[$i]}$sep"
    done
    echo "  ]"
    echo "}"
} > "$out/summary.json"
log "done in ${total} s; results in $out (summary.json, *.log, *.json)"
exit $any_failed
