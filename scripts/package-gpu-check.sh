#!/usr/bin/env bash
# Builds the folder that scripts/gpu-check.sh runs from on a GPU machine without Swift:
#   refineseg         release build with the Swift runtime and Foundation linked in statically
#   lib/              every shared library refineseg needs beyond glibc (libOpenCL.so.1 from
#                     ocl-icd, libpng, libjpeg-turbo, zlib, libstdc++, ...); gpu-check.sh uses
#                     only those the GPU machine lacks
#   gpu-check.sh, pytorch_peer.py, torch_dfrunet.py, README.txt
# and OUT.tar.gz of it. The GPU machine needs glibc at least as new as this one's (README.txt says which).
#
# Usage: scripts/package-gpu-check.sh [OUT]     (default OUT: .build-static/gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build-static/gpu-check}
scratch=.build-static
echo "== swift build -c release --static-swift-stdlib (in $scratch)"
swift build -c release --static-swift-stdlib --scratch-path "$scratch"
bin="$scratch/release/refineseg"
rm -rf "$out"
mkdir -p "$out/lib"
cp "$bin" "$out/refineseg"
cp scripts/gpu-check.sh benchmarks/pytorch_peer.py scripts/torch_dfrunet.py "$out/"
# Shared libraries beyond glibc's own (which must come from the machine itself).
ldd "$out/refineseg" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    case "$name" in
        libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libutil.so.*|ld-linux*) continue ;;
    esac
    cp -L "$path" "$out/lib/$name"
done
if [[ ! -e "$out/lib/libOpenCL.so.1" ]]; then
    echo "package-gpu-check: refineseg does not link libOpenCL.so.1?" >&2
    exit 1
fi
glibc=$(objdump -T "$out/refineseg" "$out"/lib/*.so* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -t. -k1,1 -k2,2n -k3,3n -u | tail -1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cat > "$out/README.txt" <<EOF
RefineSeg GPU check, commit $commit, built $(date -u +%FT%TZ) on $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-Linux}").
Needs: Linux x86_64 with glibc providing ${glibc:-GLIBC_2.x} or newer, a GPU with its vendor's OpenCL
driver; optionally python3 with PyTorch (CUDA or ROCm) for PyTorch's side.
Run:   ./gpu-check.sh [OUT]      (under 8 minutes; writes OUT/summary.json and the logs)
EOF
tar -czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
echo "== $out ($(du -sh "$out" | cut -f1)), $out.tar.gz; libraries: $(ls "$out/lib" | tr '\n' ' ')"
echo "   newest glibc symbol needed: ${glibc:-none found}"
