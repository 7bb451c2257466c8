"""The verified gzip reader yields exactly what nibabel yields, and refuses damaged data."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from napari_spine.io._fastgz import read_gz_array
from napari_spine.io.nifti import read_nifti


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.uint8, np.int32, np.float32, np.float64])
def test_equal_to_nibabel(tmp_path, dtype):
    rng = np.random.default_rng(1)
    data = (rng.normal(0, 300, (17, 13, 11))).astype(dtype)
    p = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), p)
    img = nib.load(p)
    fast = read_gz_array(p, img)
    assert fast.dtype == np.dtype(dtype)
    assert np.array_equal(fast, np.asanyarray(img.dataobj)) and np.array_equal(fast, data)
    assert np.array_equal(read_nifti(p).array, data)


def test_scaled_data_falls_back_to_nibabel(tmp_path):
    data = np.arange(60, dtype=np.uint16).reshape(3, 4, 5)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_slope_inter(1.0, -1024.0)
    p = tmp_path / "s.nii.gz"
    nib.save(img, p)
    loaded = nib.load(p)
    assert np.array_equal(read_gz_array(p, loaded), np.asanyarray(loaded.dataobj))
    assert np.array_equal(read_nifti(p).array, np.asanyarray(loaded.dataobj))


def test_big_endian_and_multimember_fall_back(tmp_path):
    data = np.arange(60, dtype=">i2").reshape(3, 4, 5)
    p = tmp_path / "be.nii.gz"
    hdr = nib.Nifti1Header(endianness=">")
    hdr.set_data_dtype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4), hdr), p)
    assert nib.load(p).header.get_data_dtype() == np.dtype(">i2")
    assert np.array_equal(read_gz_array(p, nib.load(p)), data)
    assert np.array_equal(read_nifti(p).array, data)
    # a gzip file made of two members (valid gzip, e.g. from `cat a.gz b.gz`)
    raw = gzip.decompress(p.read_bytes())
    q = tmp_path / "mm.nii.gz"
    q.write_bytes(gzip.compress(raw[:500]) + gzip.compress(raw[500:]))
    assert np.array_equal(read_nifti(q).array, data)


def test_labels_are_writable_images_need_not_be(tmp_path):
    p = tmp_path / "l.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)), p)
    assert read_nifti(p, what="labels").array.flags.writeable
