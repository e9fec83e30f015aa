#!/usr/bin/env python3
"""Paper model of data-parallel step time on N GPUs (BENCHMARKS.md, "Several ranks (MPI)").

Reads the gradient size from a `refineseg bench train --json` file written under mpirun
(allreduce.bytes_per_step), or takes --gradient-mb, and prints, per link speed and per-GPU
compute time of a step, the step time and scaling efficiency on N GPUs for a ring all-reduce:

    T_allreduce(N) = 2 (N-1)/N * S / (efficiency * link) + 2 (N-1) * latency
    T_step(N)      = T_compute + T_copy + max(0, T_allreduce(N) - overlap * T_backward)

T_copy = 2 S / PCIe: RefineSeg reduces on the host, so each gradient bucket is read from the
device and the sums written back (GPU-aware MPI or NCCL would avoid this; counted as not hidden).

with T_backward = 2/3 T_compute (backward is about twice the forward) and `overlap` the share
of backward that the bucketed all-reduce can hide (0 = none; DDP-style bucketing reaches most
of it when the last bucket is small). Efficiency = T_compute / T_step (weak scaling: a fixed
per-GPU batch, so the global batch grows with N).
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="bench train --json file written under mpirun")
    ap.add_argument("--gradient-mb", type=float, help="gradient size in MB (1e6 bytes) if no --json")
    ap.add_argument("--compute-ms", default="5,20,100,1400",
                    help="per-GPU compute time of one step (forward+backward+update), comma-separated")
    ap.add_argument("--links-gbps", default="10,25,100")
    ap.add_argument("--link-efficiency", type=float, default=0.8, help="share of the line rate an all-reduce reaches")
    ap.add_argument("--latency-us", type=float, default=10.0, help="per-hop latency of the ring")
    ap.add_argument("--overlap", type=float, default=0.5, help="share of backward that hides communication")
    ap.add_argument("--pcie-gbs", type=float, default=25.0, help="host-device copy bandwidth, GB/s")
    ap.add_argument("--ranks", default="1,2,4,8,16,32,64")
    args = ap.parse_args()
    if args.json:
        with open(args.json) as f:
            report = json.load(f)
        size = report["allreduce"]["bytes_per_step"]
    elif args.gradient_mb:
        size = args.gradient_mb * 1e6
    else:
        ap.error("--json or --gradient-mb")
    ranks = [int(x) for x in args.ranks.split(",")]
    print(f"gradient {size / 1e6:.2f} MB; link efficiency {args.link_efficiency}, latency {args.latency_us} us/hop, "
          f"overlap {args.overlap} of backward, host copies at {args.pcie_gbs:g} GB/s")
    header = "| link | compute/step | " + " | ".join(f"N={n}" for n in ranks) + " |"
    print(header)
    print("|" + "---|" * (len(ranks) + 2))
    for gbps in [float(x) for x in args.links_gbps.split(",")]:
        bandwidth = gbps * 1e9 / 8 * args.link_efficiency  # bytes/s
        for compute_ms in [float(x) for x in args.compute_ms.split(",")]:
            cells = []
            for n in ranks:
                t_ar = 0.0 if n == 1 else 2 * (n - 1) / n * size / bandwidth + 2 * (n - 1) * args.latency_us * 1e-6
                hidden = args.overlap * (2 / 3) * compute_ms * 1e-3
                copy = 0.0 if n == 1 else 2 * size / (args.pcie_gbs * 1e9)
                step = compute_ms * 1e-3 + copy + max(0.0, t_ar - hidden)
                cells.append(f"{step * 1e3:.1f} ms ({100 * compute_ms * 1e-3 / step:.0f} %)")
            print(f"| {gbps:g} Gb/s | {compute_ms:g} ms | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
