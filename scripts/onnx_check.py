#!/usr/bin/env python3
"""Runs an ONNX file written by `refineseg export` in onnxruntime.

    python3 scripts/onnx_check.py --model M.onnx --input X.f32 --shape N,C,H,W --output P.f32
                                  [--checkpoint M.safetensors --torch-output T.f32]

X.f32 is the normalised image as raw little-endian float32 (N, C, H, W); P.f32 receives the
graph's `probability` (N, 1, H, W) the same way. The script also checks the file with
onnx.checker, and prints one JSON line: opset, operator types used, input/output shapes as
declared (dynamic dimensions by name) and the sidecar's threshold and padding multiple.
With --checkpoint it also runs scripts/torch_dfrunet.py's PyTorch module on the same input and
writes its probabilities to --torch-output (a cross-check of the graph's structure).
Exit status 2 when onnx or onnxruntime is not installed.
"""
import argparse
import json
import os
import sys

import numpy as np

try:
    import onnx
    import onnxruntime as ort
except ImportError as e:
    print(f"onnx/onnxruntime not installed (pip install onnx onnxruntime): {e}", file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--shape", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--torch-output")
    args = ap.parse_args()
    shape = tuple(int(s) for s in args.shape.split(","))
    x = np.fromfile(args.input, dtype="<f4").reshape(shape)

    model = onnx.load(args.model)
    onnx.checker.check_model(model, full_check=True)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    ops = sorted({n.op_type for n in model.graph.node})
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    (p,) = session.run(["probability"], {"image": x})
    p.astype("<f4").tofile(args.output)

    with open(args.model + ".json") as f:
        sidecar = json.load(f)
    report = {"opset": opset, "ir_version": model.ir_version, "ops": ops, "nodes": len(model.graph.node),
              "input": dims(model.graph.input[0]), "output": dims(model.graph.output[0]),
              "output_shape": list(p.shape), "threshold": sidecar["threshold"],
              "padding_multiple": sidecar["padding"]["multiple"], "width": sidecar["architecture"]["width"]}
    if args.checkpoint and args.torch_output:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch
        from torch_dfrunet import load_checkpoint
        net = load_checkpoint(args.checkpoint)
        net.eval()
        with torch.no_grad():
            t = torch.sigmoid(net(torch.from_numpy(x))).numpy()
        t.astype("<f4").tofile(args.torch_output)
        report["max_abs_diff_onnx_vs_torch"] = float(np.abs(t - p).max())
    print(json.dumps(report))


if __name__ == "__main__":
    main()
