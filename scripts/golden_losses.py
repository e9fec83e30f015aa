#!/usr/bin/env python3
"""Golden values for Tests/RefineSegTests/LossTests.swift and OptimTests.swift, computed with PyTorch (CPU, float32).

Every input is written literally below. The inputs (flattened row-major, with their shapes)
and the golden outputs go to the fixture the Swift tests read (committed, so they need no
Python; LossTests checks it is current when torch is present):
    python3 scripts/golden_losses.py --write Tests/RefineSegTests/Fixtures/golden_losses.json
Without --write the same JSON is printed. The lesion-aware contrastive loss is written here
from its text in docs/MODEL.md (prototypes detached); the rest are torch's own ops.
"""
import argparse
import json

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)


GOLDEN = {}


def swift(name, t):
    """Records output `name` (flattened row-major; a scalar as one value)."""
    GOLDEN[name] = [float(v) for v in torch.as_tensor(t).detach().flatten()]


def flat(t):
    return {"values": [float(v) for v in t.flatten()], "shape": list(t.shape)}


# ---- inputs -------------------------------------------------------------------------------
# Segmentation maps (N, 1, H, W) = (2, 1, 2, 3).
LOGITS = torch.tensor([[[[2.5, -1.25, 0.75], [-3.0, 4.0, -0.5]]],
                       [[[1.5, -2.0, -0.25], [0.5, -4.5, 3.25]]]])
TARGET = torch.tensor([[[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]],
                       [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]]])
PROBS = torch.tensor([[[[0.9, 0.2, 0.6], [0.1, 0.95, 0.4]]],
                      [[[0.7, 0.05, 0.3], [0.55, 0.15, 0.8]]]])

# Barlow Twins projector outputs of two views, (N, D) = (4, 3).
Z1 = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-0.75, 1.25, 0.0], [2.0, -0.5, 1.0]])
Z2 = torch.tensor([[0.25, -0.75, 1.5], [1.0, 0.5, -1.0], [-1.25, 1.0, 0.5], [1.75, -0.25, 0.75]])
LAMBDA = 0.0051

# Lesion-aware contrastive inputs: embedding (N, D, H, W) = (3, 3, 2, 2); image 2 is all background.
EMBED = torch.tensor([
    [[[0.5, -1.0], [1.5, 0.25]], [[-0.5, 0.75], [1.0, -1.25]], [[2.0, 0.5], [-0.25, 1.0]]],
    [[[1.25, 0.5], [-0.75, 2.0]], [[0.25, -1.5], [0.5, 1.0]], [[-1.0, 0.75], [1.5, -0.5]]],
    [[[0.75, -0.25], [1.0, 0.5]], [[1.5, 0.25], [-1.0, 0.75]], [[0.5, 1.25], [0.25, -0.75]]],
])
LAC_LOGITS = torch.tensor([[[[2.0, -1.0], [1.5, -2.5]]], [[[-0.5, 3.0], [1.0, -1.5]]], [[[0.5, -0.5], [2.0, 1.0]]]])
LAC_TARGET = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
TAU, GAMMA = 0.1, 4.0

# Optimiser state, 5 parameters, two steps.
PARAM = torch.tensor([0.5, -1.25, 2.0, 0.0, -0.75])
GRADS = [torch.tensor([0.1, -0.2, 0.3, -0.4, 0.05]), torch.tensor([-0.05, 0.25, 0.1, 0.2, -0.3])]
LR, WD = 1e-2, 0.1


# ---- the losses -------------------------------------------------------------------------------
def lesion_contrastive(e, logits, target, tau=TAU, gamma=GAMMA):
    z = F.normalize(e, dim=1)
    per_image = []
    for n in range(e.shape[0]):
        zn = z[n].flatten(1)                       # (D, HW)
        lesion = target[n, 0].flatten() > 0.5      # (HW)
        if lesion.all() or not lesion.any():
            continue
        p_fg = F.normalize(zn[:, lesion].mean(dim=1), dim=0).detach()
        p_bg = F.normalize(zn[:, ~lesion].mean(dim=1), dim=0).detach()
        logp = F.log_softmax(torch.stack([p_fg @ zn, p_bg @ zn]) / tau, dim=0)   # (2, HW)
        ell = -torch.where(lesion, logp[0], logp[1])
        weight = 1 + gamma * ((~lesion) & (torch.sigmoid(logits[n, 0].flatten()) > 0.5)).float()
        per_image.append((weight * ell).sum() / weight.sum())
    return torch.stack(per_image).mean() if per_image else (e * 0).sum()


def barlow_twins(z1, z2, lam=LAMBDA):
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False, eps=1e-5)   # training mode: biased batch std
    c = bn(z1).T @ bn(z2) / z1.shape[0]
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = (c - torch.diag(torch.diagonal(c))).pow(2).sum()
    return on + lam * off


def soft_dice(p, y):
    inter = (p * y).flatten(1).sum(1)
    return ((2 * inter + 1) / (p.flatten(1).sum(1) + y.flatten(1).sum(1) + 1)).mean()


logits = LOGITS.clone().requires_grad_()
bce = F.binary_cross_entropy_with_logits(logits, TARGET)
bce.backward()
swift("bce", bce)
swift("bceGrad", logits.grad)
probs = PROBS.clone().requires_grad_()
dice = soft_dice(probs, TARGET)
swift("softDice", dice)
swift("softDiceLoss", 1 - dice)
dice.backward()
swift("softDiceGrad", probs.grad)
swift("softDiceAllBackground", soft_dice(PROBS, torch.zeros_like(PROBS)))
swift("barlowTwins", barlow_twins(Z1, Z2))
embed = EMBED.clone().requires_grad_()
lac = lesion_contrastive(embed, LAC_LOGITS, LAC_TARGET)
lac.backward()
swift("lesionContrastive", lac)
swift("lesionContrastiveGrad", embed.grad)

for name, decoupled in [("adamW", True), ("adamL2", False)]:
    p = PARAM.clone().requires_grad_()
    opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([p], lr=LR, weight_decay=WD)
    for g in GRADS:
        p.grad = g.clone()
        opt.step()
    state = opt.state[p]
    swift(f"{name}Param", p)
    swift(f"{name}M", state["exp_avg"])
    swift(f"{name}V", state["exp_avg_sq"])
p = PARAM.clone().requires_grad_()
opt = torch.optim.SGD([p], lr=LR, momentum=0.9, weight_decay=WD)
for g in GRADS:
    p.grad = g.clone()
    opt.step()
swift("sgdParam", p)
swift("sgdBuffer", opt.state[p]["momentum_buffer"])

fixture = {
    "generator": "scripts/golden_losses.py (PyTorch %s, CPU, float32)" % torch.__version__.split("+")[0],
    "inputs": {"logits": flat(LOGITS), "target": flat(TARGET), "probs": flat(PROBS), "z1": flat(Z1), "z2": flat(Z2),
               "embedding": flat(EMBED), "lac_logits": flat(LAC_LOGITS), "lac_target": flat(LAC_TARGET),
               "param": flat(PARAM), "grads": [flat(g) for g in GRADS]},
    "outputs": GOLDEN,
}
parser = argparse.ArgumentParser(description="Golden values for LossTests and OptimTests (PyTorch, CPU, float32).")
parser.add_argument("--write", metavar="JSON", help="write the fixture here instead of printing it")
args = parser.parse_args()
if args.write:
    with open(args.write, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {args.write}")
else:
    print(json.dumps(fixture, indent=1))
