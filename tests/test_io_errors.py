"""Bad input gets a clear error that names the file and the problem; nothing is written."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest

from helpers import save_nifti
from napari_spine import (
    ExportError,
    GeometryError,
    LabelMapError,
    SpineIOError,
    export_labels,
    load_case,
)


def _grid(tmp_path, name="img.nii.gz", shape=(6, 7, 8), dtype=np.int16):
    return save_nifti(tmp_path / name, np.zeros(shape, dtype), np.diag([1.0, 1.0, 2.0, 1.0]))


def test_missing_file(tmp_path):
    with pytest.raises(SpineIOError, match=r"nope\.nii\.gz: no such file"):
        load_case(tmp_path / "nope.nii.gz")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.nii.gz"
    p.write_bytes(b"")
    with pytest.raises(SpineIOError, match=r"empty\.nii\.gz: file is empty"):
        load_case(p)


def test_not_nifti_name(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(SpineIOError, match=r"notes\.txt: not a NIfTI file name"):
        load_case(p)


def test_not_nifti_content(tmp_path):
    p = tmp_path / "fake.nii.gz"
    p.write_bytes(gzip.compress(b"this is not a nifti header" * 40))
    with pytest.raises(SpineIOError, match=r"fake\.nii\.gz: cannot read as NIfTI"):
        load_case(p)
    q = tmp_path / "plain.nii.gz"
    q.write_text("not even gzip")
    with pytest.raises(SpineIOError, match=r"plain\.nii\.gz: cannot read as NIfTI"):
        load_case(q)


def test_truncated_gzip(tmp_path):
    rng = np.random.default_rng(0)
    p = save_nifti(tmp_path / "t.nii.gz", rng.integers(0, 3000, (40, 40, 40)).astype(np.int16), np.eye(4))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(SpineIOError, match=r"t\.nii\.gz: .*(truncated|corrupt)"):
        load_case(p)


@pytest.mark.parametrize("shape", [(6, 7), (6, 7, 8, 2)])
def test_wrong_dimensionality(tmp_path, shape):
    p = save_nifti(tmp_path / "d.nii.gz", np.zeros(shape, np.int16), np.eye(4))
    with pytest.raises(GeometryError, match=rf"d\.nii\.gz: image must be a 3-D volume.*{len(shape)}-D"):
        load_case(p)


def test_trailing_singleton_dimension_is_accepted(tmp_path):
    p = save_nifti(tmp_path / "s.nii.gz", np.zeros((6, 7, 8, 1), np.int16), np.eye(4))
    assert load_case(p).shape == (6, 8, 7)


def _corrupt_affine(path, value):
    img = nib.load(path)
    hdr = img.header.copy()
    hdr.set_qform(None, code=0)
    srow = hdr["srow_x"].copy()
    srow[:] = value
    hdr["srow_x"] = srow
    hdr["sform_code"] = 1
    out = path.with_name("bad_" + path.name)
    nib.Nifti1Image(np.asanyarray(img.dataobj), None, hdr).to_filename(out)
    return out


def test_nan_affine(tmp_path):
    p = _corrupt_affine(_grid(tmp_path), np.nan)
    with pytest.raises(GeometryError, match=r"bad_img\.nii\.gz: affine contains NaN"):
        load_case(p)


def test_singular_affine(tmp_path):
    p = _corrupt_affine(_grid(tmp_path), 0.0)
    with pytest.raises(GeometryError, match=r"bad_img\.nii\.gz: affine is singular"):
        load_case(p)


def test_labels_of_another_shape(tmp_path):
    img = _grid(tmp_path)
    lab = _grid(tmp_path, "img_seg.nii.gz", shape=(6, 7, 9), dtype=np.uint8)
    with pytest.raises(GeometryError, match=r"img_seg\.nii\.gz: labels shape \(6, 7, 9\) differs"):
        load_case(img, lab)


def test_labels_on_another_grid(tmp_path):
    img = _grid(tmp_path)
    lab = save_nifti(tmp_path / "l.nii.gz", np.zeros((6, 7, 8), np.uint8), np.diag([1.0, 1.0, 3.0, 1.0]))
    with pytest.raises(GeometryError, match=r"l\.nii\.gz: labels are not on the image grid"):
        load_case(img, lab)


def test_label_id_without_map_entry(tmp_path):
    img = _grid(tmp_path)
    data = np.zeros((6, 7, 8), np.uint8)
    data[1, 1, 1] = 12
    lab = save_nifti(tmp_path / "m.nii.gz", data, np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(LabelMapError, match=r"m\.nii\.gz: label id\(s\) 12 have no entry in the 'ssmspine'"):
        load_case(img, lab, label_scheme="ssmspine")


def test_non_integer_labels(tmp_path):
    img = _grid(tmp_path)
    lab = save_nifti(tmp_path / "f.nii.gz", np.full((6, 7, 8), 0.5, np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(SpineIOError, match=r"f\.nii\.gz: labels are not whole numbers"):
        load_case(img, lab)


def _listing(folder):
    return sorted(os.listdir(folder))


def test_export_errors_write_nothing(tmp_path, phantom_files):
    case, _, _ = phantom_files
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    bad = case.labels.copy()
    bad[0, 0, 0] = 99  # not a structure id
    with pytest.raises(LabelMapError, match=r"x\.nii\.gz: label id\(s\) \[99\]"):
        export_labels(case, bad, out_dir / "x.nii.gz")
    with pytest.raises(ExportError, match="labels shape"):
        export_labels(case, case.labels[:-1], out_dir / "x.nii.gz")
    with pytest.raises(ExportError, match="does not exist"):
        export_labels(case, case.labels, out_dir / "missing" / "x.nii.gz")
    with pytest.raises(ExportError, match=r"\.nii\.gz or \.nii"):
        export_labels(case, case.labels, out_dir / "x.png")
    l6 = case.labels.copy()
    l6[case.labels == 24] = 25
    with pytest.raises(LabelMapError, match="L6"):
        export_labels(case, l6, out_dir / "x.nii.gz", scheme="ssmspine")
    assert _listing(out_dir) == []


def test_failed_verification_keeps_the_previous_file(tmp_path, phantom_files, monkeypatch):
    import napari_spine.io.export as ex

    case, _, _ = phantom_files
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "keep.nii.gz"
    export_labels(case, case.labels, target)
    before = target.read_bytes()

    def broken(*a, **k):
        raise ExportError("simulated verification failure")

    monkeypatch.setattr(ex, "_verify", broken)
    changed = case.labels.copy()
    changed[case.labels == 22] = 0
    with pytest.raises(ExportError, match="simulated"):
        export_labels(case, changed, target)
    assert target.read_bytes() == before
    assert _listing(tmp_path / "out") == ["keep.nii.gz"]  # no temporary file left behind


def test_a_huge_label_id_does_not_allocate_a_huge_table(tmp_path):
    from napari_spine.anatomy.labelmaps import LabelMap

    lm = LabelMap(name="t", description="test", to_canonical={1: 20, 2: 21}, from_canonical={20: 1, 21: 2},
                  unmapped="background")
    lab = np.zeros((6, 5, 4), np.int64)
    lab[1, 1, 1], lab[2, 2, 2], lab[3, 3, 3] = 1, 2, 2**40
    out = lm.to_canonical_array(lab)  # a lookup table would need 1 TiB here
    assert out.dtype == np.uint8 and out[1, 1, 1] == 20 and out[2, 2, 2] == 21 and out[3, 3, 3] == 0
    assert np.count_nonzero(out) == 2
