"""Corrupt NIfTI files are errors, never silent loads: gzip CRC, vox_offset, header sanity."""

from __future__ import annotations

import gzip
import struct

import nibabel as nib
import numpy as np
import pytest

from napari_spine import load_case
from napari_spine.errors import SpineIOError
from napari_spine.io.nifti import read_nifti


def _ct(shape=(48, 40, 36), seed=0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(0, 1, shape), 2)
    return (smooth / smooth.std() * 400 - 200).astype(np.int16)


def _write(path, data, **hdr):
    img = nib.Nifti1Image(data, np.diag([0.8, 0.9, 1.1, 1.0]))
    for k, v in hdr.items():
        img.header[k] = v
    nib.save(img, str(path))
    return path


def test_every_bit_flip_in_the_compressed_voxels_is_caught(tmp_path):
    # large enough (4.6 MB compressed) that a streaming reader stops before the gzip trailer
    # and never compares the CRC: with that reader most of these flips load wrong voxels
    rng = np.random.default_rng(0)
    data = rng.normal(0, 30, (256, 256, 60)).astype(np.int16)
    good = _write(tmp_path / "ct.nii.gz", data)
    raw = good.read_bytes()
    refused = 0
    for i in range(12):
        pos = int(rng.integers(400, len(raw) - 8))  # inside the deflate stream
        bad = bytearray(raw)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        p = tmp_path / f"flip{i}.nii.gz"
        p.write_bytes(bytes(bad))
        try:
            got = read_nifti(p).array
        except SpineIOError as exc:
            assert str(exc).startswith(str(p))
            refused += 1
            continue
        # a flip that decodes to the same bytes is harmless; a changed voxel never loads
        assert np.array_equal(got, data), f"flip at byte {pos} loaded with wrong voxels"
    assert refused >= 10


def test_crc_mismatch_says_what_is_wrong(tmp_path):
    good = _write(tmp_path / "ct.nii.gz", _ct())
    bad = bytearray(good.read_bytes())
    bad[-6] ^= 0xFF  # the CRC-32 in the trailer: the data decode, but do not match it
    p = tmp_path / "crc.nii.gz"
    p.write_bytes(bytes(bad))
    with pytest.raises(SpineIOError, match=r"crc\.nii\.gz: corrupt gzip data \(CRC check failed"):
        load_case(p)


def _patch(raw: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(raw)
    out[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(out)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_vox_offset_inside_the_header_is_refused(tmp_path, suffix):
    plain = _write(tmp_path / "x.nii", _ct())
    raw = _patch(plain.read_bytes(), 108, "<f", 0.0)  # vox_offset = 0
    p = tmp_path / f"off0{suffix}"
    p.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    with pytest.raises(SpineIOError, match=r"vox_offset 0 points inside the header.*byte 352"):
        read_nifti(p)


def test_header_sanity(tmp_path):
    plain = _write(tmp_path / "x.nii", _ct()).read_bytes()
    cases = {
        "bitpix": (_patch(plain, 72, "<h", 8), r"bitpix 8 for data type int16"),
        "huge": (_patch(_patch(_patch(plain, 42, "<h", 32767), 44, "<h", 32767), 46, "<h", 32767),
                 r"declares 70\.4 TB of voxel data"),
        "nan_zoom": (_patch(plain, 80, "<f", float("nan")), r"implausible voxel size"),
        "giant_zoom": (_patch(plain, 84, "<f", 5e6), r"implausible voxel size"),
        "truncated": (plain[: len(plain) - 1000], r"the header declares .* the file holds"),
    }
    for name, (raw, message) in cases.items():
        for suffix in (".nii", ".nii.gz"):
            p = tmp_path / f"{name}{suffix}"
            p.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
            with pytest.raises(SpineIOError, match=message if suffix == ".nii" or name != "truncated"
                               else r"truncated"):
                read_nifti(p)


def test_small_corrupt_gzip_is_not_called_an_unknown_file_type(tmp_path):
    good = _write(tmp_path / "small.nii.gz", np.ones((3, 3, 3), np.uint8))
    bad = bytearray(good.read_bytes())
    bad[12] ^= 0x5A  # the start of the deflate stream, where the header is
    p = tmp_path / "bad.nii.gz"
    p.write_bytes(bytes(bad))
    with pytest.raises(SpineIOError) as info:
        read_nifti(p)
    assert "file type" not in str(info.value) and "gzip" in str(info.value)
