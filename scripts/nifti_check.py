#!/usr/bin/env python3
"""nibabel's side of the NIfTI round-trip test (Tests/RefineSegTests/VolumeTests.swift).

    nifti_check.py make DIR
        writes volumes whose headers are not the defaults: an oblique affine (qform code 1,
        sform code 2 with a different matrix), pixdim 0.9 x 1.1 x 2.5 mm, a description and
        an intent name:
          DIR/le_float.nii.gz   little-endian float32, gzip
          DIR/be_int16.nii      big-endian int16, not compressed
          DIR/four_d.nii.gz     4-D (x, y, z, 2): two modalities in one file
    nifti_check.py compare INPUT OUTPUT RAW
        loads both with nibabel, prints one line per header field that differs ("same" when
        none), and writes OUTPUT's voxels as uint8 (0/1 for p > 0.5 or non-zero) to RAW in
        x-fastest order, so the caller can check where the mask voxels are.

Needs numpy and nibabel (`pip install nibabel`).
"""
import sys

import numpy as np
import nibabel as nib


def oblique_affine():
    t = np.deg2rad(12.0)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag([0.9, 1.1, 2.5])
    a[:3, 3] = [-40.5, 12.25, 7.0]
    return a


def make(d):
    rng = np.random.default_rng(3)
    shape = (37, 29, 6)
    x, y = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    vol = np.zeros(shape, np.float32)
    for z in range(shape[2]):
        blob = ((x - 12 - z) ** 2 + (y - 15) ** 2) < 30
        vol[:, :, z] = 100 + 20 * rng.standard_normal(x.shape) + 300 * blob
    vol[:2] = 0  # some background

    def save(data, path, dtype, endian):
        hdr = nib.Nifti1Header(endianness=endian)
        hdr.set_data_dtype(dtype)
        img = nib.Nifti1Image(data.astype(dtype), None, header=hdr)
        img.set_qform(oblique_affine(), code=1)
        sform = oblique_affine().copy()
        sform[:3, 3] += [0.5, -0.25, 1.0]
        img.set_sform(sform, code=2)
        img.header["descrip"] = b"refineseg round trip"
        img.header["intent_name"] = b"scan"
        img.header.set_xyzt_units("mm", "sec")
        nib.save(img, path)

    save(vol, f"{d}/le_float.nii.gz", np.float32, "<")
    save(vol, f"{d}/be_int16.nii", np.int16, ">")
    save(np.stack([vol, vol[::-1]], axis=3), f"{d}/four_d.nii.gz", np.float32, "<")


def compare(inp, out, raw):
    a, b = nib.load(inp), nib.load(out)
    ha, hb = a.header, b.header
    diffs = []
    if a.shape[:3] != b.shape:
        diffs.append(f"shape {a.shape} vs {b.shape}")
    for name, va, vb in [("affine", a.affine, b.affine), ("qform", ha.get_qform(), hb.get_qform()),
                         ("sform", ha.get_sform(), hb.get_sform()),
                         ("pixdim", ha["pixdim"][1:4], hb["pixdim"][1:4]),
                         ("quatern", [ha["quatern_b"], ha["quatern_c"], ha["quatern_d"], ha["qoffset_x"], ha["qoffset_y"], ha["qoffset_z"]],
                          [hb["quatern_b"], hb["quatern_c"], hb["quatern_d"], hb["qoffset_x"], hb["qoffset_y"], hb["qoffset_z"]])]:
        if not np.array_equal(np.asarray(va), np.asarray(vb)):
            diffs.append(f"{name} {np.asarray(va).tolist()} vs {np.asarray(vb).tolist()}")
    for field in ["qform_code", "sform_code", "xyzt_units", "descrip", "intent_name"]:
        if ha[field] != hb[field]:
            diffs.append(f"{field} {ha[field]} vs {hb[field]}")
    print("\n".join(diffs) if diffs else "same")
    data = np.asarray(b.dataobj)
    binary = (data > 0.5) if data.dtype.kind == "f" else (data != 0)
    binary.astype(np.uint8).ravel(order="F").tofile(raw)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "compare":
        compare(*sys.argv[2:])
    else:
        sys.exit(__doc__)
