#!/usr/bin/env python3
"""DFR-UNet in PyTorch, exactly as docs/MODEL.md (version 1) defines it.

This is the reference peer for the Swift/OpenCL implementation: a checkpoint written by
`refineseg` (safetensors, dotted tensor names, metadata `in_channels` and `width` as
strings) loads here and must give the same probabilities (max abs difference < 1e-3).

Layout is NCHW float32 throughout. Module attribute names are chosen so that
`state_dict()` yields the spec's dotted names, e.g. `enc1.conv1.conv.weight`,
`enc1.ca.fc1.weight`, `context.branches.0.bn.running_var`, `up4.weight`, `head.bias`,
`lac.weight`. BatchNorm `num_batches_tracked` buffers exist in PyTorch but are not part of
the checkpoint contract: they are never written and never expected when loading.

Commands
  predict  --checkpoint M.safetensors --input X.f32 --shape N,C,H,W --output P.f32
           X.f32 is raw little-endian float32, already normalised; P.f32 receives the
           sigmoid probabilities (N,1,H,W) as raw little-endian float32.
  selftest build a width-4 model, save it as safetensors with metadata, reload, compare.
  describe --width W --in-channels C [--projector-dim D]
           print "name<TAB>d0,d1,..." for every checkpoint tensor in state-dict order
           (BatchNorm num_batches_tracked excluded). With --projector-dim the Barlow Twins
           projector's tensors follow, prefixed `projector.`.

Exit status is non-zero on any error; load errors list every missing, unexpected and
mis-shaped tensor name.

As a module (put scripts/ on sys.path, or copy this one file next to your code):

    import torch_dfrunet
    model = torch_dfrunet.load("runs/f20/model.safetensors")       # nn.Module, eval mode
    prob = torch_dfrunet.predict(model, image)                      # (H, W) float32 in [0, 1]

`image` is a numpy array (H, W) or (C, H, W) of raw intensities; `predict` normalises it as
RefineSeg does (docs/MODEL.md "Input"), reflect-pads to multiples of 16, runs the network and
returns the sigmoid probabilities at the image's size (mask = prob > 0.5). `tta=True` averages
the four mirrored predictions, as `refineseg annotate` does by default. A checkpoint without the
`lac` head (used only by the training loss) loads too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
BN_MOMENTUM = 0.1


class ConvBN(nn.Module):
    """conv k×k (padding d·(k−1)/2, stride 1, no bias) → BatchNorm. Names `conv.weight`, `bn.*`."""

    def __init__(self, cin: int, cout: int, k: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=dilation * (k - 1) // 2,
                              dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x):
        return self.bn(self.conv(x))


class ChannelAttention(nn.Module):
    """CBAM channel attention; hidden h = max(4, C // 16). Names `fc1.*` (h, C), `fc2.*` (C, h)."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(4, channels // 16)
        self.fc1 = nn.Linear(channels, hidden, bias=True)
        self.fc2 = nn.Linear(hidden, channels, bias=True)

    def forward(self, x):
        a = x.mean(dim=(2, 3))                      # (N, C)
        m = x.amax(dim=(2, 3))                      # (N, C)
        g = torch.sigmoid(self.fc2(F.relu(self.fc1(a))) + self.fc2(F.relu(self.fc1(m))))
        return x * g[:, :, None, None]


class SpatialAttention(nn.Module):
    """Spatial information compression: sigmoid(BN(conv7×7([mean_C, max_C]))). Names `conv.weight`, `bn.*`."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x):
        s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (N, 2, H, W)
        return x * torch.sigmoid(self.bn(self.conv(s)))


class RefineBlock(nn.Module):
    """relu(sa(ca(conv2(relu(conv1(x))))) + shortcut(x))."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = ConvBN(cin, cout, 3)
        self.conv2 = ConvBN(cout, cout, 3)
        self.ca = ChannelAttention(cout)
        self.sa = SpatialAttention()
        self.shortcut = ConvBN(cin, cout, 1)

    def forward(self, x):
        h = F.relu(self.conv1(x))
        h = self.conv2(h)
        h = self.sa(self.ca(h))
        return F.relu(h + self.shortcut(x))


class DilatedContext(nn.Module):
    """ASPP-like context at 1/16 resolution; branch width b = C // 4, dilations 1, 2, 4, 8."""

    def __init__(self, channels: int):
        super().__init__()
        b = channels // 4
        self.branches = nn.ModuleList([ConvBN(channels, b, 3, dilation=2 ** i) for i in range(4)])
        self.pool = nn.Conv2d(channels, b, 1, bias=True)
        self.fuse = ConvBN(5 * b, channels, 1)

    def forward(self, x):
        n, _, h, w = x.shape
        parts = [F.relu(branch(x)) for branch in self.branches]
        pooled = F.relu(self.pool(x.mean(dim=(2, 3), keepdim=True)))   # (N, b, 1, 1)
        parts.append(pooled.expand(n, pooled.shape[1], h, w))
        return x + F.relu(self.fuse(torch.cat(parts, dim=1)))


class DFRUNet(nn.Module):
    """DFR-UNet (in_channels c, width w). forward returns the logit map (N, 1, H, W).

    `forward_features` also returns dec1's output (N, w, H, W), on which the lesion-aware
    contrastive head `lac` (conv1×1 w → 32, with bias) runs during supervised training.
    `encode` returns the Barlow Twins embedding: mean over H,W of the context output (N, 16w).
    """

    def __init__(self, in_channels: int = 1, width: int = 16):
        super().__init__()
        c, w = in_channels, width
        self.in_channels, self.width = c, w
        self.enc1 = RefineBlock(c, w)
        self.enc2 = RefineBlock(w, 2 * w)
        self.enc3 = RefineBlock(2 * w, 4 * w)
        self.enc4 = RefineBlock(4 * w, 8 * w)
        self.bottleneck = RefineBlock(8 * w, 16 * w)
        self.context = DilatedContext(16 * w)
        self.up4 = nn.ConvTranspose2d(16 * w, 8 * w, 2, stride=2, bias=True)
        self.dec4 = RefineBlock(16 * w, 8 * w)
        self.up3 = nn.ConvTranspose2d(8 * w, 4 * w, 2, stride=2, bias=True)
        self.dec3 = RefineBlock(8 * w, 4 * w)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2, bias=True)
        self.dec2 = RefineBlock(4 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2, bias=True)
        self.dec1 = RefineBlock(2 * w, w)
        self.head = nn.Conv2d(w, 1, 1, bias=True)
        self.lac = nn.Conv2d(w, 32, 1, bias=True)

    def _encoder(self, x):
        if x.shape[2] % 16 or x.shape[3] % 16:
            raise ValueError(f"DFR-UNet input H and W must be multiples of 16, got {tuple(x.shape)}")
        s1 = self.enc1(x)
        s2 = self.enc2(F.max_pool2d(s1, 2))
        s3 = self.enc3(F.max_pool2d(s2, 2))
        s4 = self.enc4(F.max_pool2d(s3, 2))
        z = self.context(self.bottleneck(F.max_pool2d(s4, 2)))
        return s1, s2, s3, s4, z

    def encode(self, x):
        return self._encoder(x)[-1].mean(dim=(2, 3))

    def forward_features(self, x):
        s1, s2, s3, s4, z = self._encoder(x)
        d = self.dec4(torch.cat([self.up4(z), s4], dim=1))
        d = self.dec3(torch.cat([self.up3(d), s3], dim=1))
        d = self.dec2(torch.cat([self.up2(d), s2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d), s1], dim=1))
        return self.head(d1), d1

    def forward(self, x):
        return self.forward_features(x)[0]


class BarlowProjector(nn.Sequential):
    """Barlow Twins projector on the encoder embedding (N, 16w) → (N, d).

    An nn.Sequential, so that stored under the attribute `projector` its names read `projector.K.*`:
        projector.0  Linear(16w, d, no bias)       .weight (d, 16w)
        projector.1  BatchNorm1d(d)                .weight .bias .running_mean .running_var
        projector.2  ReLU
        projector.3  Linear(d, d, no bias)         .weight (d, d)
        projector.4  BatchNorm1d(d)
        projector.5  ReLU
        projector.6  Linear(d, d, no bias)         .weight (d, d)
    Its own state_dict therefore has names `0.weight`, `1.weight`, ..., `6.weight`.
    """

    def __init__(self, in_features: int, dim: int = 1024):
        super().__init__(
            nn.Linear(in_features, dim, bias=False),
            nn.BatchNorm1d(dim, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(),
            nn.Linear(dim, dim, bias=False),
            nn.BatchNorm1d(dim, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(),
            nn.Linear(dim, dim, bias=False),
        )


class BarlowTwinsModel(nn.Module):
    """Pre-training wrapper: the DFR-UNet (names unprefixed, as in the fine-tuning checkpoint)
    plus `projector.*`. The decoder, head and lac tensors exist but get no gradient."""

    def __init__(self, in_channels: int = 1, width: int = 16, dim: int = 1024):
        super().__init__()
        self.net = DFRUNet(in_channels, width)
        self.projector = BarlowProjector(16 * width, dim)

    def checkpoint_state(self):
        state = {k: v for k, v in self.net.state_dict().items()}
        state.update({f"projector.{k}": v for k, v in self.projector.state_dict().items()})
        return checkpoint_tensors(state)

    def forward(self, x):
        return self.projector(self.net.encode(x))


def barlow_twins_loss(z1, z2, lam: float = 0.0051, eps: float = 1e-5):
    """L_BT of docs/MODEL.md: standardise over the batch (biased std, eps 1e-5), c = z1ᵀz2/N."""
    n = z1.shape[0]

    def standardise(z):
        mean = z.mean(dim=0)
        std = torch.sqrt(z.var(dim=0, unbiased=False) + eps)
        return (z - mean) / std

    c = standardise(z1).T @ standardise(z2) / n
    on = (1 - torch.diagonal(c)).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + lam * off


# ---------------------------------------------------------------- checkpoints

def checkpoint_tensors(state: dict) -> dict:
    """The checkpoint view of a state dict: num_batches_tracked dropped, tensors contiguous."""
    return {k: v.detach().contiguous() for k, v in state.items()
            if not k.endswith("num_batches_tracked")}


def save_checkpoint(model: DFRUNet, path: str) -> None:
    from safetensors.torch import save_file
    save_file(checkpoint_tensors(model.state_dict()), path,
              metadata={"in_channels": str(model.in_channels), "width": str(model.width)})


class CheckpointError(Exception):
    pass


def load_into(module: nn.Module, tensors: dict, source: str) -> None:
    """Strict load that ignores only BatchNorm num_batches_tracked; lists every problem."""
    expected = checkpoint_tensors(module.state_dict())
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    mismatched = [f"{k}: checkpoint {tuple(tensors[k].shape)}, model {tuple(v.shape)}"
                  for k, v in expected.items() if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)]
    wrong_dtype = [f"{k}: {tensors[k].dtype}" for k in expected
                   if k in tensors and tensors[k].dtype != torch.float32]
    if missing or unexpected or mismatched or wrong_dtype:
        lines = [f"{source}: checkpoint does not match the model"]
        lines += [f"  missing: {k}" for k in missing]
        lines += [f"  unexpected: {k}" for k in unexpected]
        lines += [f"  shape mismatch: {m}" for m in mismatched]
        lines += [f"  dtype (want float32): {m}" for m in wrong_dtype]
        raise CheckpointError("\n".join(lines))
    result = module.load_state_dict(tensors, strict=False)
    # Whatever strict=False tolerated must be num_batches_tracked only.
    leftover = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if leftover or result.unexpected_keys:
        raise CheckpointError(f"{source}: load left {leftover} missing, {result.unexpected_keys} unexpected")


def load_checkpoint(path: str) -> DFRUNet:
    from safetensors import safe_open
    from safetensors.torch import load_file
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(path)
    except OSError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError for a malformed file
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    try:
        in_channels, width = int(meta["in_channels"]), int(meta["width"])
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: metadata needs integer strings in_channels and width, got {meta}") from e
    model = DFRUNet(in_channels, width)
    # A pre-training checkpoint carries projector.*: not part of the segmentation model.
    tensors = {k: v for k, v in tensors.items() if not k.startswith("projector.")}
    load_into(model, tensors, path)
    return model.eval()


# ---------------------------------------------------------------- module API

def load(path: str) -> DFRUNet:
    """A RefineSeg checkpoint as a DFR-UNet in eval mode (architecture from its metadata).
    The `lac` head, which only the training loss uses, may be missing; it then stays freshly
    initialised. Raises CheckpointError for any other mismatch."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(path)
    except OSError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    if not any(k.startswith("lac.") for k in tensors):
        try:
            fresh = DFRUNet(int(meta["in_channels"]), int(meta["width"]))
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: metadata needs integer strings in_channels and width, got {meta}") from e
        tensors.update({k: v for k, v in checkpoint_tensors(fresh.state_dict()).items() if k.startswith("lac.")})
        model = fresh
        tensors = {k: v for k, v in tensors.items() if not k.startswith("projector.")}
        load_into(model, tensors, path)
        return model.eval()
    return load_checkpoint(path)


def normalise(image: np.ndarray) -> np.ndarray:
    """docs/MODEL.md's input normalisation per channel: (x - p1) / (p99.8 - p1 + 1e-6), not clipped.
    `image` (H, W) or (C, H, W); returns (C, H, W) float32."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {x.shape}")
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        lo, hi = np.percentile(x[c].astype(np.float64), [1, 99.8])
        out[c] = (x[c] - np.float32(lo)) * np.float32(1 / (np.float32(hi) - np.float32(lo) + np.float32(1e-6)))
    return out


def predict(model: DFRUNet, image: np.ndarray, tta: bool = False) -> np.ndarray:
    """Sigmoid probabilities (H, W) float32 of `model` on one image of raw intensities
    ((H, W) or (C, H, W)), predicted whole like `refineseg annotate`: normalised, reflect-padded
    at the bottom and right to multiples of 16, cropped back. `tta`: mean over the image and its
    left-right, top-bottom and double mirror."""
    x = normalise(image)
    c, h, w = x.shape
    if c != model.in_channels:
        raise ValueError(f"image has {c} channel(s) but the model takes {model.in_channels}")
    h16, w16 = -(-h // 16) * 16, -(-w // 16) * 16
    flips = [(False, False), (False, True), (True, False), (True, True)] if tta else [(False, False)]
    total = np.zeros((h, w), dtype=np.float32)
    model.eval()
    for fy, fx in flips:
        m = x[:, ::-1, :] if fy else x
        m = m[:, :, ::-1] if fx else m
        padded = np.pad(m, ((0, 0), (0, h16 - h), (0, w16 - w)), mode="reflect")
        with torch.no_grad():
            p = torch.sigmoid(model(torch.from_numpy(np.ascontiguousarray(padded))[None]))[0, 0, :h, :w].numpy()
        p = p[::-1, :] if fy else p
        p = p[:, ::-1] if fx else p
        total += p
    return total / len(flips)


# ---------------------------------------------------------------- commands

def parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise CheckpointError(f"--shape must be N,C,H,W integers, got {text!r}")
    if len(shape) != 4 or min(shape) <= 0:
        raise CheckpointError(f"--shape must be four positive integers N,C,H,W, got {text!r}")
    return shape


def cmd_predict(args) -> None:
    model = load_checkpoint(args.checkpoint)
    shape = parse_shape(args.shape)
    raw = np.fromfile(args.input, dtype="<f4")
    if raw.size != int(np.prod(shape)):
        raise CheckpointError(f"{args.input}: holds {raw.size} floats, shape {shape} needs {int(np.prod(shape))}")
    if shape[1] != model.in_channels:
        raise CheckpointError(f"--shape has {shape[1]} channels, checkpoint in_channels is {model.in_channels}")
    x = torch.from_numpy(raw.reshape(shape).copy())
    with torch.no_grad():
        prob = torch.sigmoid(model(x))
    prob.numpy().astype("<f4").tofile(args.output)


def cmd_describe(args) -> None:
    model = DFRUNet(args.in_channels, args.width)
    for name, t in checkpoint_tensors(model.state_dict()).items():
        print(f"{name}\t{','.join(str(d) for d in t.shape)}")
    if args.projector_dim:
        proj = BarlowProjector(16 * args.width, args.projector_dim)
        for name, t in checkpoint_tensors(proj.state_dict()).items():
            print(f"projector.{name}\t{','.join(str(d) for d in t.shape)}")


def cmd_selftest(_args) -> None:
    torch.manual_seed(0)
    model = DFRUNet(in_channels=3, width=4)
    # Non-trivial BN statistics so a lost running_mean/var would show in the output.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, 32, 48))
    model.eval()
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        expected = torch.sigmoid(model(x))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.safetensors")
        save_checkpoint(model, path)
        from safetensors.torch import load_file
        stored = load_file(path)
        if any(k.endswith("num_batches_tracked") for k in stored):
            raise CheckpointError("selftest: num_batches_tracked was written")
        reloaded = load_checkpoint(path)
        with torch.no_grad():
            got = torch.sigmoid(reloaded(x))
        if not torch.equal(got, expected):
            raise CheckpointError(f"selftest: reloaded output differs, max {float((got - expected).abs().max())}")
        # The predict path through files gives the same numbers.
        xin, pout = os.path.join(tmp, "x.f32"), os.path.join(tmp, "p.f32")
        x.numpy().astype("<f4").tofile(xin)
        cmd_predict(argparse.Namespace(checkpoint=path, input=xin, shape="2,3,32,48", output=pout))
        file_prob = np.fromfile(pout, dtype="<f4").reshape(2, 1, 32, 48)
        if not np.array_equal(file_prob, expected.numpy()):
            raise CheckpointError("selftest: predict command output differs")
        # Loading must fail loudly on a renamed and a reshaped tensor.
        bad = dict(stored)
        bad["enc1.conv1.conv.weightX"] = bad.pop("enc1.conv1.conv.weight")
        bad["head.weight"] = torch.zeros(1, 4, 3, 3)
        try:
            load_into(DFRUNet(3, 4), bad, "bad")
        except CheckpointError as e:
            msg = str(e)
            for needle in ("missing: enc1.conv1.conv.weight", "unexpected: enc1.conv1.conv.weightX",
                           "shape mismatch: head.weight"):
                if needle not in msg:
                    raise CheckpointError(f"selftest: load error does not mention {needle!r}:\n{msg}")
        else:
            raise CheckpointError("selftest: a bad checkpoint loaded without error")
    # Projector naming and the Barlow Twins loss run.
    bt = BarlowTwinsModel(3, 4, dim=64)
    names = list(bt.checkpoint_state())
    for want in ("projector.0.weight", "projector.1.running_var", "projector.3.weight",
                 "projector.4.bias", "projector.6.weight"):
        if want not in names:
            raise CheckpointError(f"selftest: projector tensor {want} missing")
    loss = barlow_twins_loss(bt(torch.randn(4, 3, 32, 32)), bt(torch.randn(4, 3, 32, 32)))
    if not torch.isfinite(loss):
        raise CheckpointError("selftest: Barlow Twins loss not finite")
    n_tensors = len(checkpoint_tensors(model.state_dict()))
    print(f"selftest passed: {n_tensors} tensors, reload bit-identical, predict file path identical, "
          f"bad checkpoint rejected, projector names ok")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="sigmoid probabilities of a checkpoint on raw float32 input")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--shape", required=True, help="N,C,H,W")
    p.add_argument("--output", required=True)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    s = sub.add_parser("selftest", help="save/reload round trip of a width-4 model")
    d = sub.add_parser("describe", help="print checkpoint tensor names and shapes")
    d.add_argument("--width", type=int, default=16)
    d.add_argument("--in-channels", type=int, default=1)
    d.add_argument("--projector-dim", type=int, default=0)
    args = parser.parse_args(argv)
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    try:
        {"predict": cmd_predict, "selftest": cmd_selftest, "describe": cmd_describe}[args.command](args)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"torch_dfrunet: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
