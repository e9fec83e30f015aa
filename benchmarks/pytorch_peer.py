#!/usr/bin/env python3
"""PyTorch CPU peer for the DFR-UNet training step (the number `refineseg` is compared with).

One step = zero_grad → forward (logits + lac embedding) → loss → backward → AdamW step, with
    L = 0.5·BCEWithLogits + 0.5·(1 − softDice) + 0.1·L_LAC
exactly as docs/MODEL.md "Supervised loss" defines it. The model is the one in
scripts/torch_dfrunet.py. Inputs are seeded random images and blob-like binary masks (a few
random ellipses per image; one image in eight is left without lesion so the LAC skip path runs).

Timing: `--warmup` untimed steps, then `--steps` steps each timed with time.perf_counter
(the step ends after optimizer.step() returns; PyTorch CPU ops are synchronous; with
`--device cuda` the step ends after torch.cuda.synchronize(), as refineseg's ends with a finish).
`--eval` times inference only (model.eval(), no_grad, forward of the logits).

FLOPs: one forward's convolution work, counted with hooks on every Conv2d and
ConvTranspose2d that runs:
    Conv2d:          2·N·Cout·OH·OW·(Cin/groups)·KH·KW
    ConvTranspose2d: 2·N·Cin·IH·IW·Cout·KH·KW   (each input pixel scatters one KH×KW tap per
                     output channel; written over output size this is 2·N·Cout·OH·OW·Cin·KH·KW/(sH·sW),
                     so for kernel 2 stride 2 it equals 2·N·Cout·OH·OW·Cin)
    Linear:          2·N·in·out   (channel attention's fc layers; refineseg runs them as 1×1 convs)
Attention gates, BatchNorm, pooling and elementwise work is not counted (a few per cent). The count
equals refineseg's `DFRUNet.convLayers` sum (refineseg bench train's forward_gflop).
Training GFLOP/s assumes backward = 2 × forward (grad w.r.t. input + grad w.r.t. weights, each
about one forward's worth of multiply-adds), i.e. training FLOPs per step = 3 × forward FLOPs.

Example: python3 benchmarks/pytorch_peer.py --steps 10 --json torch_nchw.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # scripts/gpu-check.sh's folder carries it alongside
from torch_dfrunet import DFRUNet  # noqa: E402

LAC_TAU = 0.1
LAC_GAMMA = 4.0
LAC_BETA = 0.1


def soft_dice(prob, y):
    """Per image (2Σp·y + 1)/(Σp + Σy + 1), averaged over the batch. prob, y: (N, 1, H, W)."""
    inter = (prob * y).sum(dim=(1, 2, 3))
    return ((2 * inter + 1) / (prob.sum(dim=(1, 2, 3)) + y.sum(dim=(1, 2, 3)) + 1)).mean()


def lac_loss(emb, logit, y, tau: float = LAC_TAU, gamma: float = LAC_GAMMA):
    """Lesion-aware contrastive loss of docs/MODEL.md.

    emb: (N, D, H, W) raw lac head output; logit, y: (N, 1, H, W), y in {0, 1}.
    Images lacking either class are skipped; 0 (with a graph) when none has both.
    """
    z = F.normalize(emb, dim=1, eps=1e-12)                          # (N, D, H, W)
    fg = y                                                          # (N, 1, H, W)
    bg = 1 - y
    n_fg = fg.sum(dim=(2, 3))                                       # (N, 1)
    n_bg = bg.sum(dim=(2, 3))
    valid = ((n_fg > 0) & (n_bg > 0)).squeeze(1)                    # (N,)
    if not bool(valid.any()):
        return emb.sum() * 0
    with torch.no_grad():
        p_fg = F.normalize((z * fg).sum(dim=(2, 3)) / n_fg.clamp(min=1), dim=1)   # (N, D)
        p_bg = F.normalize((z * bg).sum(dim=(2, 3)) / n_bg.clamp(min=1), dim=1)
    s_fg = torch.einsum("ndhw,nd->nhw", z, p_fg) / tau              # (N, H, W)
    s_bg = torch.einsum("ndhw,nd->nhw", z, p_bg) / tau
    log_p = torch.log_softmax(torch.stack([s_fg, s_bg], dim=1), dim=1)   # (N, 2, H, W)
    yy = y.squeeze(1)
    nll = -(yy * log_p[:, 0] + (1 - yy) * log_p[:, 1])              # (N, H, W)
    with torch.no_grad():
        hard_fp = ((yy == 0) & (torch.sigmoid(logit.squeeze(1)) > 0.5)).float()
        weight = 1 + gamma * hard_fp
    per_image = (weight * nll).sum(dim=(1, 2)) / weight.sum(dim=(1, 2))  # (N,)
    return per_image[valid].mean()


def supervised_loss(model, x, y):
    logit, d1 = model.forward_features(x)
    emb = model.lac(d1)
    bce = F.binary_cross_entropy_with_logits(logit, y)
    dice = soft_dice(torch.sigmoid(logit), y)
    return 0.5 * bce + 0.5 * (1 - dice) + LAC_BETA * lac_loss(emb, logit, y)


def blob_masks(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(n, 1, size, size) float32 in {0, 1}: 1–3 random ellipses per image; images 7 mod 8 empty."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    masks = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        if i % 8 == 7:
            continue
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0.15, 0.85, 2) * size
            ry, rx = rng.uniform(0.04, 0.2, 2) * size
            theta = rng.uniform(0, np.pi)
            c, s = np.cos(theta), np.sin(theta)
            u = ((xx - cx) * c + (yy - cy) * s) / rx
            v = (-(xx - cx) * s + (yy - cy) * c) / ry
            masks[i, 0][u * u + v * v <= 1] = 1
    return masks


def count_forward_flops(model, x, with_lac: bool) -> int:
    total = 0

    def conv_hook(m, inp, out):
        nonlocal total
        n, cout, oh, ow = out.shape
        kh, kw = m.kernel_size
        total += 2 * n * cout * oh * ow * (m.in_channels // m.groups) * kh * kw

    def convt_hook(m, inp, out):
        nonlocal total
        n, cin, ih, iw = inp[0].shape
        kh, kw = m.kernel_size
        total += 2 * n * cin * ih * iw * m.out_channels * kh * kw

    def linear_hook(m, inp, out):
        nonlocal total
        total += 2 * out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, nn.ConvTranspose2d):
            hooks.append(m.register_forward_hook(convt_hook))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
    with torch.no_grad():
        _, d1 = model.forward_features(x)
        if with_lac:
            model.lac(d1)
    for h in hooks:
        h.remove()
    return total


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--channels", type=int, default=1, help="input channels")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--eval", action="store_true", help="time inference only")
    ap.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:N] (scripts/gpu-check.sh)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: this PyTorch has no CUDA device (torch {torch.__version__})")
    device = torch.device(args.device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    if args.size % 16:
        ap.error("--size must be a multiple of 16")
    if args.steps < 1 or args.warmup < 0 or args.batch < 1:
        ap.error("--steps >= 1, --warmup >= 0, --batch >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    model = DFRUNet(args.channels, args.width).to(device=device, memory_format=fmt)
    x = torch.from_numpy(rng.standard_normal((args.batch, args.channels, args.size, args.size),
                                             dtype=np.float32)).to(device).contiguous(memory_format=fmt)
    y = torch.from_numpy(blob_masks(rng, args.batch, args.size)).to(device).contiguous(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)

    fwd_flops = count_forward_flops(model, x, with_lac=not args.eval)
    step_flops = fwd_flops if args.eval else 3 * fwd_flops

    if args.eval:
        model.eval()

        def step():
            with torch.no_grad():
                return model(x).sum()
    else:
        model.train()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = supervised_loss(model, x, y)
            loss.backward()
            opt.step()
            return loss

    for _ in range(args.warmup):
        step()
    sync()
    times_ms, losses = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        sync()
        times_ms.append((time.perf_counter() - t0) * 1e3)
        losses.append(float(loss.detach()))
    if not all(np.isfinite(losses)):
        print(f"pytorch_peer: non-finite loss {losses}", file=sys.stderr)
        return 1

    med = statistics.median(times_ms)
    result = {
        "mode": "eval" if args.eval else "train",
        "batch": args.batch, "size": args.size, "width": args.width, "channels": args.channels,
        "steps": args.steps, "warmup": args.warmup,
        "step_ms_median": med,
        "step_ms_min": min(times_ms),
        "step_ms_max": max(times_ms),
        "step_ms_p90": percentile(times_ms, 90),
        "images_per_second": args.batch / (med / 1e3),
        "forward_gflop": fwd_flops / 1e9,
        "step_gflop": step_flops / 1e9,
        "gflops_per_second": step_flops / 1e9 / (med / 1e3),
        "flops_assumption": "conv+convT+linear only; training step = 3x forward (backward = 2x forward)",
        "torch_version": torch.__version__,
        "threads": args.threads,
        "memory_format": "channels_last" if args.channels_last else "nchw",
        "cpu": platform.processor() or platform.machine(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "loss_first": losses[0], "loss_last": losses[-1],
        "step_ms_all": times_ms,
    }
    print(f"torch {torch.__version__} {result['device']} {result['mode']} {result['memory_format']} threads={args.threads} "
          f"batch={args.batch} size={args.size} width={args.width} steps={args.steps}")
    print(f"step ms: median {med:.1f}  min {result['step_ms_min']:.1f}  max {result['step_ms_max']:.1f}  "
          f"p90 {result['step_ms_p90']:.1f}")
    print(f"images/s {result['images_per_second']:.2f}   forward {result['forward_gflop']:.3f} GFLOP, "
          f"step {result['step_gflop']:.3f} GFLOP, {result['gflops_per_second']:.1f} GFLOP/s "
          f"({'forward only' if args.eval else 'backward assumed 2x forward'})")
    print(f"{'output sum' if args.eval else 'loss'} {losses[0]:.4f} -> {losses[-1]:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
