#!/usr/bin/env python3
"""Golden values for RefineSeg's metrics (docs/MODEL.md "Metrics"), computed with numpy/scipy.

The masks below are ASCII art ('#' = lesion / predicted lesion, '.' = background). The masks
and their golden values are written to the fixture that Tests/RefineSegTests/MetricsTests.swift
reads (committed, so the Swift tests need no Python; MetricsTests checks it is up to date when
numpy and scipy are present):
Run: python3 scripts/metrics_reference.py --write Tests/RefineSegTests/Fixtures/metrics_reference.json
     python3 scripts/metrics_reference.py          (prints the same values; needs numpy and scipy)

Definitions (independent of the Swift code, same conventions):
- per image: dice = (2|A∩B|+1)/(|A|+|B|+1); iou = |A∩B|/|A∪B| (1 when both empty);
  thresholded jaccard = iou, or 0 below 0.65;
- fp components: scipy.ndimage.label with a 3×3 structure (8-connectivity) on the prediction,
  counting the components that contain no label pixel;
- hd95: medpy.metric.binary.hd95's algorithm, written out: surface = mask XOR
  binary_erosion(mask, cross structure, border_value 0); distances from each surface pixel of
  one mask to the nearest surface pixel of the other via distance_transform_edt; both directed
  lists pooled; numpy.percentile(·, 95) (linear); None when either mask is empty;
- set: precision = TP/(TP+FP) (1 when nothing predicted), recall = TP/(TP+FN) (1 when no
  lesion), fdr = 1 − precision, fpr = FP/(FP+TN) (0 when no background), miou = mean of the
  lesion and background IoU of the pooled confusion matrix (a class IoU is 1 when that class
  is absent from both), hd95 = mean over images where defined (None when none).
"""

import argparse
import json

import numpy as np
from scipy import ndimage

CASES = [
    ("overlap_with_far_fp", [
        "................",
        "...######.......",
        "..########......",
        "..########......",
        "..########......",
        "...######.......",
        "................",
        "................",
        "................",
        "................",
    ], [
        "................",
        "................",
        "....######......",
        "....#######.....",
        "....#######...#.",
        "....######...##.",
        "..............#.",
        "................",
        "#...............",
        "##..............",
    ]),
    ("ring_and_diagonal", [
        ".............",
        ".#######.....",
        ".#######.....",
        ".##...##.....",
        ".##...##.....",
        ".#######.....",
        ".#######.....",
        ".............",
        ".............",
    ], [
        ".............",
        "..######.....",
        ".########....",
        ".##....##....",
        ".##....##....",
        ".########...#",
        "..######...#.",
        "..........#..",
        ".........#...",
    ]),
    ("missed_lesion", [
        "........",
        "..###...",
        "..###...",
        "........",
    ], [
        "........",
        "........",
        "........",
        "........",
    ]),
    ("fp_only", [
        ".........",
        ".........",
        ".........",
        ".........",
        ".........",
    ], [
        "##.......",
        "#........",
        ".....#...",
        "......#..",
        ".......##",
    ]),
    ("both_empty", [
        "......",
        "......",
        "......",
    ], [
        "......",
        "......",
        "......",
    ]),
    ("full_image_touching_border", [
        "#######",
        "#######",
        "#######",
        "#######",
        "#######",
    ], [
        "#######",
        "#######",
        "#######",
        "####...",
        "###....",
    ]),
]


def mask(art):
    return np.array([[c == "#" for c in row] for row in art], dtype=bool)


def surface_distances(result, reference):
    footprint = ndimage.generate_binary_structure(result.ndim, 1)
    result_border = result ^ ndimage.binary_erosion(result, structure=footprint, iterations=1)
    reference_border = reference ^ ndimage.binary_erosion(reference, structure=footprint, iterations=1)
    dt = ndimage.distance_transform_edt(~reference_border)
    return dt[result_border]


def hd95(a, b):
    if not a.any() or not b.any():
        return None
    return float(np.percentile(np.hstack((surface_distances(a, b), surface_distances(b, a))), 95))


def fp_components(pred, label):
    labels, n = ndimage.label(pred, structure=np.ones((3, 3), dtype=int))
    return sum(1 for k in range(1, n + 1) if not label[labels == k].any())


def reference():
    """Per-image rows (with the masks' art) and the summary over all CASES."""
    rows, TP, FP, FN, TN = [], 0, 0, 0, 0
    for name, label_art, pred_art in CASES:
        b, a = mask(label_art), mask(pred_art)   # b label, a prediction
        tp = int((a & b).sum()); fp = int((a & ~b).sum()); fn = int((~a & b).sum()); tn = int((~a & ~b).sum())
        TP += tp; FP += fp; FN += fn; TN += tn
        union = tp + fp + fn
        iou = 1.0 if union == 0 else tp / union
        rows.append(dict(name=name, label=label_art, prediction=pred_art,
                         dice=float((2 * tp + 1) / (a.sum() + b.sum() + 1)), iou=iou,
                         thresholded_jaccard=0.0 if iou < 0.65 else iou,
                         fp_components=fp_components(a, b), hd95=hd95(a, b), tp=tp, fp=fp, fn=fn))
    precision = 1.0 if TP + FP == 0 else TP / (TP + FP)
    iou_l = 1.0 if TP + FP + FN == 0 else TP / (TP + FP + FN)
    iou_b = 1.0 if TN + FP + FN == 0 else TN / (TN + FP + FN)
    hds = [r["hd95"] for r in rows if r["hd95"] is not None]
    summary = dict(
        precision=precision,
        recall=1.0 if TP + FN == 0 else TP / (TP + FN),
        dice=float(np.mean([r["dice"] for r in rows])),
        iou=float(np.mean([r["iou"] for r in rows])),
        miou=(iou_l + iou_b) / 2,
        thresholded_jaccard=float(np.mean([r["thresholded_jaccard"] for r in rows])),
        fdr=1 - precision,
        fpr=0.0 if FP + TN == 0 else FP / (FP + TN),
        fp_components_mean=float(np.mean([r["fp_components"] for r in rows])),
        fp_image_share=float(np.mean([r["fp_components"] > 0 for r in rows])),
        hd95=float(np.mean(hds)) if hds else None,
    )
    return rows, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="JSON", help="write the fixture (masks, per-image values, summary) here")
    args = parser.parse_args()
    rows, summary = reference()
    if args.write:
        fixture = {"generator": "scripts/metrics_reference.py", "numpy": np.__version__,
                   "images": rows, "summary": summary}
        with open(args.write, "w") as f:
            json.dump(fixture, f, indent=1)
            f.write("\n")
        print(f"wrote {args.write}")
        return
    print("per image:")
    for r in rows:
        print(json.dumps({k: v for k, v in r.items() if k not in ("label", "prediction")}))
    print("summary:")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
