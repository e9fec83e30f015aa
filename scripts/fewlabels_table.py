#!/usr/bin/env python3
"""The few-label table of docs/study-real from the study folders scripts/fewlabels-gpu.sh writes.

Usage: scripts/fewlabels_table.py OUT [DATASETS]   (default DATASETS: bacteria dsb cho)

Reads every finished run's OUT/<study>/runs/<variant>-f<fraction>-s<seed>/eval/metrics.json
(test split, scored as `evaluate` does by default) of the studies OUT/D (the default recipe:
scratch, semi, scratch+lac), OUT/D-pa0 (scratch without the percentile re-normalisation) and
OUT/D-full (scratch at 100 %), and prints, per dataset and fraction, test Dice mean ± std over
seeds and, for each row, the paired difference against the default scratch run of the same
seed (mean and Student-t 95 % interval), and a per-run CSV (--csv FILE).
"""
import argparse
import glob
import json
import math
import os
import re

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]


def runs(folder):
    out = {}
    for path in glob.glob(os.path.join(folder, "runs", "*", "eval", "metrics.json")):
        m = re.match(r"(.+)-f([0-9.]+)-s(\d+)$", os.path.basename(os.path.dirname(os.path.dirname(path))))
        if not m:
            continue
        with open(path) as f:
            metrics = json.load(f)
        summary = metrics.get("summary", metrics)
        out[(m.group(1), float(m.group(2)), int(m.group(3)))] = summary
    return out


def mean_std(v):
    mu = sum(v) / len(v)
    sd = math.sqrt(sum((x - mu) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return mu, sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("datasets", nargs="*", default=["bacteria", "dsb", "cho"])
    ap.add_argument("--csv")
    a = ap.parse_args()
    rows = []
    csv = ["dataset,setting,fraction,seed,dice,precision,recall,fp_components_mean"]
    print("| dataset | labels | setting | seeds | test Dice | precision | recall | Dice per seed | paired Δ vs scratch (95 % CI) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d in a.datasets:
        settings = []
        for suffix, label in [("", None), ("-pa0", "scratch (pa 0)"), ("-full", None)]:
            for (v, f, s), m in runs(os.path.join(a.out, d + suffix)).items():
                settings.append((label or v, f, s, m))
        base = {(f, s): m["dice"] for (lab, f, s, m) in settings if lab == "scratch"}
        for f in sorted({x[1] for x in settings}):
            order = ["scratch (pa 0)", "scratch", "scratch+lac", "semi"]
            for lab in sorted({x[0] for x in settings if x[1] == f}, key=lambda l: order.index(l) if l in order else 9):
                rs = sorted([x for x in settings if x[0] == lab and x[1] == f], key=lambda x: x[2])
                dice = [x[3]["dice"] for x in rs]
                mu, sd = mean_std(dice)
                pm, ps = mean_std([x[3]["precision"] for x in rs])
                rm, rsd = mean_std([x[3]["recall"] for x in rs])
                diffs = [x[3]["dice"] - base[(f, x[2])] for x in rs if (f, x[2]) in base]
                paired = "—"
                if lab != "scratch" and len(diffs) >= 2:
                    dm, dsd = mean_std(diffs)
                    half = T975[len(diffs) - 2] * dsd / math.sqrt(len(diffs))
                    paired = f"{dm:+.3f} [{dm - half:+.3f}, {dm + half:+.3f}], {sum(x > 0 for x in diffs)}/{len(diffs)} better"
                per = ", ".join(f"{x:.3f}" for x in dice)
                print(f"| {d} | {round(f * 100)} % | {lab} | {len(rs)} | {mu:.3f} ± {sd:.3f} | {pm:.3f} ± {ps:.3f} | {rm:.3f} ± {rsd:.3f} | {per} | {paired} |")
                for x in rs:
                    m = x[3]
                    csv.append(f"{d},{lab},{f},{x[2]},{m['dice']:.6f},{m['precision']:.6f},{m['recall']:.6f},{m.get('fp_components_mean', float('nan')):.3f}")
    if a.csv:
        with open(a.csv, "w") as fh:
            fh.write("\n".join(csv) + "\n")


if __name__ == "__main__":
    main()
