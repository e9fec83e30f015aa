#!/usr/bin/env python3
"""The few-label table of docs/study-real from the study folders scripts/fewlabels-gpu.sh writes.

Usage: scripts/fewlabels_table.py OUT [DATASETS]   (default DATASETS: bacteria dsb cho)

Reads every finished run's OUT/<study>/runs/<variant>-f<fraction>-s<seed>/eval/metrics.json
(test split, scored as `evaluate` does by default) of the studies OUT/D (the default recipe:
scratch, semi, scratch+lac), OUT/D-pa0 (scratch without the percentile re-normalisation) and
OUT/D-full (scratch at 100 %), and prints, per dataset and fraction, test Dice mean ± std over
seeds and, for each row, the paired difference against the default scratch run of the same
seed (mean and Student-t 95 % interval), a per-run CSV (--csv FILE) and a plot of test Dice
against the label fraction, mean ± std over seeds, one line per dataset and setting (--svg FILE).
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
    ap.add_argument("--svg")
    a = ap.parse_args()
    rows = []
    series = {}
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
            order = ["scratch (pa 0)", "scratch", "scratch+lac", "bt", "bt+lac", "semi"]
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
                series.setdefault((d, lab), []).append((f, mu, sd))
                print(f"| {d} | {round(f * 100)} % | {lab} | {len(rs)} | {mu:.3f} ± {sd:.3f} | {pm:.3f} ± {ps:.3f} | {rm:.3f} ± {rsd:.3f} | {per} | {paired} |")
                for x in rs:
                    m = x[3]
                    csv.append(f"{d},{lab},{f},{x[2]},{m['dice']:.6f},{m['precision']:.6f},{m['recall']:.6f},{m.get('fp_components_mean', float('nan')):.3f}")
    if a.csv:
        with open(a.csv, "w") as fh:
            fh.write("\n".join(csv) + "\n")
    if a.svg:
        with open(a.svg, "w") as fh:
            fh.write(plot(series))


def plot(series):
    """Test Dice against the label fraction (log axis), mean ± std error bars, as an SVG."""
    w, h, left, right, top, bottom = 640, 400, 60, 190, 20, 50
    fractions = sorted({f for pts in series.values() for f, _, _ in pts})
    lo_f, hi_f = math.log(min(fractions)), math.log(max(fractions))
    def xs(f):
        return left + 25 + (w - left - right - 45) * ((math.log(f) - lo_f) / (hi_f - lo_f) if hi_f > lo_f else 0.5)
    values = [m - sd for pts in series.values() for _, m, sd in pts] + [m + sd for pts in series.values() for _, m, sd in pts]
    y0 = max(0.0, math.floor(min(values) * 10) / 10)
    def ys(v):
        return top + (h - top - bottom) * (1 - (v - y0) / (1 - y0))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<line x1="{left}" y1="{ys(y0)}" x2="{w - right}" y2="{ys(y0)}" stroke="black"/>',
           f'<line x1="{left}" y1="{ys(y0)}" x2="{left}" y2="{ys(1)}" stroke="black"/>']
    for k in range(int(round((1 - y0) * 10)) + 1):
        v = y0 + k / 10
        out.append(f'<text x="{left - 8}" y="{ys(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
        out.append(f'<line x1="{left}" y1="{ys(v):.1f}" x2="{w - right}" y2="{ys(v):.1f}" stroke="#ddd"/>')
    for f in fractions:
        out.append(f'<text x="{xs(f):.1f}" y="{h - bottom + 18}" text-anchor="middle">{round(f * 100)} %</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 10}" text-anchor="middle">labels (log scale)</text>')
    out.append(f'<text x="15" y="{(top + h - bottom) / 2}" transform="rotate(-90 15 {(top + h - bottom) / 2})" text-anchor="middle">test Dice (mean ± std over seeds)</text>')
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    datasets = sorted({d for d, _ in series})
    for i, ((d, lab), pts) in enumerate(sorted(series.items())):
        colour = colours[datasets.index(d) % len(colours)]
        dash = "" if lab == "scratch" else ' stroke-dasharray="5,3"'
        pts = sorted(pts)
        shift = 4 * (i - (len(series) - 1) / 2)   # error bars side by side
        path = " ".join(f"{'M' if j == 0 else 'L'}{xs(f) + shift:.1f},{ys(m):.1f}" for j, (f, m, _) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for f, m, sd in pts:
            x = xs(f) + shift
            out.append(f'<line x1="{x:.1f}" y1="{ys(max(y0, m - sd)):.1f}" x2="{x:.1f}" y2="{ys(min(1, m + sd)):.1f}" stroke="{colour}"/>')
            out.append(f'<circle cx="{x:.1f}" cy="{ys(m):.1f}" r="3" fill="{colour}"/>')
        ly = top + 16 * i + 10
        out.append(f'<line x1="{w - right + 12}" y1="{ly}" x2="{w - right + 36}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{w - right + 42}" y="{ly + 4}">{d} {lab}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
