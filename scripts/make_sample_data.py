#!/usr/bin/env python3
"""Builds data/sample, RefineSeg's small real dataset, from the StarDist 0.9.2 wheel.

The wheel ships stardist/data/images/img2d.tif (a 512x512 16-bit fluorescence image of
nuclei from the 2018 Data Science Bowl, BBBC038) and mask2d.tif (its instance mask, one id
per nucleus). Both are uncompressed little-endian TIFFs. This script reads their IFDs,
checks that each holds exactly one 512x512 uint16 strip, cuts the image into 128x128 tiles
and writes them in the project layout:

    OUT/train/images/NAME.png  OUT/train/masks/NAME.png   (top-left, top-right and bottom-left quadrants)
    OUT/test/images/NAME.png   OUT/test/masks/NAME.png    (bottom-right quadrant)

With the default --tile 128 that is 12 train and 4 test tile pairs; --tile 64 gives 48 and 16.

Images are 16-bit grey PNGs holding the raw values; masks are 8-bit grey PNGs, 255 where the
instance id is > 0, else 0. NAME is kdsb18_yYYY_xXXX, the tile's top-left pixel in the
512x512 image. PNGs are written with zlib + struct only (no numpy, no Pillow), so the output
is byte-identical on every run.

Usage:
    python3 scripts/make_sample_data.py                 # pip-downloads the wheel to a temp dir
    python3 scripts/make_sample_data.py --source stardist-0.9.2-....whl
    python3 scripts/make_sample_data.py --source path/to/stardist/data/images --tile 64
"""
import argparse
import glob
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

SIDE = 512
# SHA-256 of the two files inside stardist 0.9.2 (identical in every platform wheel).
EXPECTED_SHA256 = {
    "img2d.tif": "f9ccc1571b92c861ff87e28463068b43f61bd47357ed0503f711e5cd1eb97750",
    "mask2d.tif": "59ad5e820b7982ca9d13e946fa6e7f64e2714899e00a2ae6c69aa79aad53d46f",
}
TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}


def fail(message):
    sys.exit(f"make_sample_data: {message}")


def read_sources(source):
    """Returns {name: bytes} for img2d.tif and mask2d.tif from a wheel or a directory."""
    if source is None:
        tmp = tempfile.mkdtemp(prefix="stardist-")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "stardist==0.9.2", "-d", tmp], check=True)
        wheels = glob.glob(os.path.join(tmp, "stardist-0.9.2-*.whl"))
        if not wheels:
            fail(f"pip downloaded no stardist 0.9.2 wheel into {tmp}")
        source = wheels[0]
    files = {}
    if source.endswith(".whl"):
        with zipfile.ZipFile(source) as wheel:
            for name in EXPECTED_SHA256:
                files[name] = wheel.read(f"stardist/data/images/{name}")
    else:
        for name in EXPECTED_SHA256:
            with open(os.path.join(source, name), "rb") as f:
                files[name] = f.read()
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != EXPECTED_SHA256[name]:
            fail(f"{name}: SHA-256 {digest} is not the stardist 0.9.2 file ({EXPECTED_SHA256[name]})")
    return files


def read_tiff_uint16(name, data):
    """The pixels of a single-strip, uncompressed, little-endian 512x512 uint16 TIFF, as a flat list."""
    if data[:4] != b"II*\x00":
        fail(f"{name}: not a little-endian TIFF (byte order {data[:2]!r})")
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    tags = {}
    for i in range(count):
        tag, kind, n, value_or_offset = struct.unpack_from("<HHII", data, ifd + 2 + 12 * i)
        size = TIFF_TYPE_SIZES.get(kind, 1) * n
        raw = data[ifd + 2 + 12 * i + 8: ifd + 2 + 12 * i + 12] if size <= 4 else data[value_or_offset: value_or_offset + size]
        if kind == 3:
            tags[tag] = list(struct.unpack_from(f"<{n}H", raw))
        elif kind == 4:
            tags[tag] = list(struct.unpack_from(f"<{n}I", raw))
    def one(tag, label, default=None):
        values = tags.get(tag, [default] if default is not None else None)
        if values is None or len(values) != 1:
            fail(f"{name}: tag {tag} ({label}) is {values}, expected one value")
        return values[0]
    width, height = one(256, "ImageWidth"), one(257, "ImageLength")
    bits, compression = one(258, "BitsPerSample"), one(259, "Compression", 1)
    samples, sample_format = one(277, "SamplesPerPixel", 1), one(339, "SampleFormat", 1)
    offset, byte_count = one(273, "StripOffsets"), one(279, "StripByteCounts")
    expected = dict(width=SIDE, height=SIDE, bits=16, compression=1, samples=1, sample_format=1,
                    offset=256, byte_count=SIDE * SIDE * 2)
    found = dict(width=width, height=height, bits=bits, compression=compression, samples=samples,
                 sample_format=sample_format, offset=offset, byte_count=byte_count)
    if found != expected:
        fail(f"{name}: TIFF layout {found} is not the expected {expected}")
    if offset + byte_count > len(data):
        fail(f"{name}: strip at {offset}+{byte_count} runs past the file of {len(data)} bytes")
    return list(struct.unpack_from(f"<{SIDE * SIDE}H", data, offset))


def png_bytes(width, height, bit_depth, rows):
    """A grey PNG; rows are lists of integer samples (8- or 16-bit, stored big-endian)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    pack = "B" if bit_depth == 8 else "H"
    raw = b"".join(b"\x00" + struct.pack(f">{len(row)}{pack}", *row) for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="stardist 0.9.2 wheel or directory holding img2d.tif and mask2d.tif "
                                         "(default: pip download the wheel)")
    parser.add_argument("--tile", type=int, default=128,
                        help="tile side in pixels: a multiple of 16 (the network's requirement) dividing 256")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sample"))
    args = parser.parse_args()
    TILE = args.tile
    if TILE <= 0 or TILE % 16 != 0 or (SIDE // 2) % TILE != 0:
        fail(f"--tile {TILE} must be a multiple of 16 that divides the 256-pixel quadrant")

    files = read_sources(args.source)
    image = read_tiff_uint16("img2d.tif", files["img2d.tif"])
    mask = read_tiff_uint16("mask2d.tif", files["mask2d.tif"])
    nuclei = len(set(mask) - {0})

    counts = {}
    for split in ("train", "test"):
        for kind in ("images", "masks"):
            folder = os.path.join(args.out, split, kind)
            os.makedirs(folder, exist_ok=True)
            for old in glob.glob(os.path.join(folder, "*.png")):
                os.remove(old)
    for y0 in range(0, SIDE, TILE):
        for x0 in range(0, SIDE, TILE):
            split = "test" if (y0 >= SIDE // 2 and x0 >= SIDE // 2) else "train"
            name = f"kdsb18_y{y0:03d}_x{x0:03d}.png"
            image_rows = [image[(y0 + y) * SIDE + x0:(y0 + y) * SIDE + x0 + TILE] for y in range(TILE)]
            mask_rows = [[255 if v > 0 else 0 for v in mask[(y0 + y) * SIDE + x0:(y0 + y) * SIDE + x0 + TILE]] for y in range(TILE)]
            for kind, data in (("images", png_bytes(TILE, TILE, 16, image_rows)), ("masks", png_bytes(TILE, TILE, 8, mask_rows))):
                with open(os.path.join(args.out, split, kind, name), "wb") as f:
                    f.write(data)
            counts[split] = counts.get(split, 0) + 1
    print(f"img2d.tif: {SIDE}x{SIDE} uint16, values {min(image)}..{max(image)}; mask2d.tif: {nuclei} nuclei")
    print(f"wrote {counts['train']} train and {counts['test']} test tile pairs of {TILE}x{TILE} to {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
