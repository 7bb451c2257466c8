"""Edges of the NIfTI reader's decisions: which files are label data, where an image's
segmentation is found, which headers are refused before a voxel is read, and which arrays
are copied."""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from napari_spine.errors import SpineIOError
from napari_spine.io import nifti


def test_label_data_is_whole_non_negative_few_valued_and_mostly_background():
    lab = np.zeros((8, 8, 8), np.uint8)
    lab[2:4, 2:4, 2:4] = 7
    assert nifti.looks_like_label_data(lab)
    assert nifti.looks_like_label_data(lab.astype(np.float32))
    assert not nifti.looks_like_label_data(lab.astype(np.complex64))  # not a label type
    assert not nifti.looks_like_label_data(np.zeros((0, 4, 4), np.uint8))
    neg = lab.astype(np.int16)
    neg[0, 0, 0] = -1
    assert not nifti.looks_like_label_data(neg)
    half = lab.astype(np.float32)
    half[0, 0, 0] = 0.5
    assert not nifti.looks_like_label_data(half)
    nan = lab.astype(np.float32)
    nan[0, 0, 0] = np.nan
    assert not nifti.looks_like_label_data(nan)


def test_an_nnunet_label_is_found_only_in_the_nnunet_layout(tmp_path):
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    tr, lab = tmp_path / "imagesTr", tmp_path / "labelsTr"
    tr.mkdir(), lab.mkdir()
    nib.save(img, str(tr / "case_0000.nii.gz"))
    nib.save(img, str(lab / "case.nii.gz"))
    assert nifti.find_labels_for(tr / "case_0000.nii.gz") == lab / "case.nii.gz"
    nib.save(img, str(tr / "other.nii.gz"))  # no channel suffix: not an nnU-Net image name
    nib.save(img, str(lab / "ot.nii.gz"))
    assert nifti.find_labels_for(tr / "other.nii.gz") is None
    plain = tmp_path / "scans"  # a channel-like suffix outside imagesTr / imagesTs
    plain.mkdir()
    nib.save(img, str(plain / "case_0000.nii.gz"))
    nib.save(img, str(plain / "case.nii.gz"))
    assert nifti.find_labels_for(plain / "case_0000.nii.gz") is None


def test_a_header_without_dimensions_is_refused_before_reading():
    hdr = nib.Nifti1Header()
    hdr["dim"][:] = 0  # no dimension at all
    with pytest.raises(SpineIOError, match=r"x\.nii: the header's dimensions \(0,\) are not all positive"):
        nifti.check_header(SimpleNamespace(header=hdr), "x.nii", 1000)


def test_uncompressed_volumes_are_mapped_copy_on_write_and_painting_never_reaches_the_file(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    p = tmp_path / "scan.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(p))
    before = p.read_bytes()
    for what in ("image", "labels"):
        arr = nifti.read_nifti(p, what=what).array
        assert isinstance(arr, np.memmap) and arr.flags.writeable  # no copy of the whole volume
        arr[0, 0, 0] = 99  # a paint stroke
        del arr
    assert p.read_bytes() == before
    assert np.array_equal(nifti.read_nifti(p).array, data)
