#!/usr/bin/env bash
# Installs what RefineSeg needs on Debian 12 (run as root, or with sudo available):
# OpenCL headers and loader, PoCL (a CPU OpenCL device), Oclgrind (a simulated GPU device with
# race and bounds checks, for scripts/oclgrind-check.sh), libpng, libjpeg-turbo, zlib,
# Open MPI (loaded at run time only under mpirun/srun; the MPI tests need mpirun),
# Chromium (the browser test of the review page), and the Python packages of the reference
# scripts (CPU PyTorch, numpy, safetensors, nibabel; onnx and onnxruntime for the ONNX export check; tifffile for scripts/make_real_data.py).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
need=()
for p in ocl-icd-opencl-dev opencl-headers pocl-opencl-icd oclgrind libpng-dev libturbojpeg0-dev zlib1g-dev clinfo libopenmpi-dev openmpi-bin chromium; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi
if command -v python3 >/dev/null 2>&1; then
  python3 -c "import torch, numpy, safetensors, nibabel" 2>/dev/null \
    || python3 -m pip install --quiet torch numpy safetensors nibabel \
    || echo "setup: PyTorch could not be installed; the PyTorch cross-check tests will report themselves skipped" >&2
  python3 -c "import onnx, onnxruntime" 2>/dev/null \
    || python3 -m pip install --quiet onnx onnxruntime \
    || echo "setup: onnx/onnxruntime could not be installed; the ONNX export check will report itself skipped" >&2
  python3 -c "import tifffile" 2>/dev/null \
    || python3 -m pip install --quiet tifffile \
    || echo "setup: tifffile could not be installed; scripts/make_real_data.py needs it" >&2
fi
clinfo -l || true
