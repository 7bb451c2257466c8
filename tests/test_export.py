"""Label and landmark export: schemes, dtypes, headers, landmarks in voxel and world mm."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from helpers import save_nifti
from napari_spine import (
    ExportError,
    export_labels,
    export_landmarks,
    load_case,
    make_phantom,
    read_landmarks,
)
from napari_spine.geometry import display_index_to_file_index, voxel_to_world


def test_native_and_canonical_schemes(tmp_path):
    aff = np.diag([0.5, 0.5, 3.0, 1.0])
    native = np.zeros((10, 12, 5), np.uint8)
    native[2:4, 2:5, 1:3] = 1  # vertebral body (CSpineSeg)
    native[5:7, 2:5, 1:3] = 2  # disc
    ip = save_nifti(tmp_path / "593973-000001_Study-MR-1_Series-3.nii.gz", native.astype(np.int16), aff)
    lp = save_nifti(tmp_path / "593973-000001_Study-MR-1_Series-3_SEG.nii.gz", native, aff)
    case = load_case(ip, lp)
    assert case.label_scheme == "cspineseg"
    assert set(case.structures_present) == {50, 100}
    res = export_labels(case, case.labels, tmp_path / "native.nii.gz")
    assert res.scheme == "cspineseg" and res.counts == {1: 12, 2: 12}
    assert np.array_equal(np.asanyarray(nib.load(res.path).dataobj), native)
    res = export_labels(case, case.labels, tmp_path / "canon.nii.gz", scheme="canonical")
    back = np.asanyarray(nib.load(res.path).dataobj)
    assert res.scheme == "verse" and set(np.unique(back)) == {0, 50, 100}


def test_header_is_preserved(tmp_path):
    aff = np.array([[0, 0, -1.2, 50], [-0.9, 0, 0, 20], [0, 1.1, 0, -70], [0, 0, 0, 1.0]])
    img = nib.Nifti1Image(np.zeros((8, 9, 10), np.int16), aff)
    img.header.set_qform(aff, code=1)
    img.header.set_sform(aff, code=2)
    img.header.set_xyzt_units("mm", "msec")
    img.header["descrip"] = b"source header"
    img.header.set_slope_inter(2.0, -1024.0)  # image scaling must not touch labels
    nib.save(img, tmp_path / "i.nii.gz")
    case = load_case(tmp_path / "i.nii.gz")
    labels = np.zeros(case.shape, np.uint8)
    labels[1:3, 2:4, 3:5] = 22
    labels[4, 5, 6] = 60
    out = export_labels(case, labels, tmp_path / "l.nii.gz").path
    back = nib.load(out)
    h = back.header
    assert h.get_data_dtype() == np.uint8
    assert int(h["qform_code"]) == 1 and int(h["sform_code"]) == 2
    assert h.get_xyzt_units() == ("mm", "msec")
    assert bytes(h["descrip"]).rstrip(b"\0") == b"source header"
    assert np.allclose(h.get_sform(), aff, atol=1e-6) and np.allclose(h.get_qform(), aff, atol=1e-5)
    assert back.dataobj.slope == 1.0 and back.dataobj.inter == 0.0
    data = np.asanyarray(back.dataobj)
    assert (data == 22).sum() == 8 and (data == 60).sum() == 1


def test_labels_file_header_is_used_and_float_labels_become_uint8(tmp_path):
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    lab = np.zeros((6, 6, 6), np.float64)
    lab[1:3, 1:3, 1:3] = 3.0
    ip = save_nifti(tmp_path / "t2.nii.gz", np.zeros((6, 6, 6), np.int16), aff)
    lp = save_nifti(tmp_path / "t2_seg-manual.nii.gz", lab, aff, scode=2)
    case = load_case(ip, lp)
    out = export_labels(case, case.labels, tmp_path / "o.nii.gz").path
    back = nib.load(out)
    assert back.header.get_data_dtype() == np.uint8
    assert int(back.header["sform_code"]) == 2  # from the labels file's own header
    assert np.array_equal(np.asanyarray(back.dataobj), lab.astype(np.uint8))


def test_uncompressed_nii(tmp_path, phantom_files):
    case, _, lab = phantom_files
    out = export_labels(case, case.labels, tmp_path / "plain.nii").path
    assert np.array_equal(np.asanyarray(nib.load(out).dataobj), np.asanyarray(nib.load(lab).dataobj))


def test_landmarks_json_csv_roundtrip(tmp_path):
    case = make_phantom((24, 80, 48), (1.5, 1.0, 0.8), levels=("L2", "L5"), axcodes="PIR", seed=2)
    lm = case.landmarks
    j = export_landmarks(case, tmp_path / "lm.json")
    c = export_landmarks(case, tmp_path / "lm.csv")
    doc = json.loads(j.read_text())
    assert doc["source_axcodes"] == "PIR"
    rows = doc["landmarks"]
    assert [r["name"] for r in rows] == list(lm.names)
    assert rows[0]["structure"] == "L2" and rows[1]["structure"] == "L2/L3"
    ijk = display_index_to_file_index(lm.coords, case.source.ornt, case.source.shape)
    xyz = voxel_to_world(case.source.affine, ijk)
    assert np.allclose([[r["i"], r["j"], r["k"]] for r in rows], ijk)
    assert np.allclose([[r["x_mm"], r["y_mm"], r["z_mm"]] for r in rows], xyz)
    with open(c, newline="") as f:
        crow = list(csv.DictReader(f))
    assert [r["structure_id"] for r in crow] == [str(i) for i in lm.structure_ids]
    for path in (j, c):
        back = read_landmarks(path, case)
        assert np.allclose(back.coords, lm.coords, atol=1e-9)
        assert list(back.structure_ids) == list(lm.structure_ids) and back.names == lm.names


def test_landmark_export_refuses_unknown_suffix(tmp_path):
    case = make_phantom((16, 48, 32), levels=("L3", "L4"))
    with pytest.raises(Exception, match=r"\.json or \.csv"):
        export_landmarks(case, tmp_path / "lm.txt")
    assert list(tmp_path.iterdir()) == []


def test_every_generic_structure_exports_in_the_canonical_scheme(tmp_path):
    # predictions of level-free models (vertebra 51, body 50, disc 100, canal, cord)
    import numpy as np

    from napari_spine import export_labels, make_phantom, ontology

    case = make_phantom((20, 40, 30), levels=("L1", "L3"), seed=3)
    lab = np.zeros(case.shape, np.uint8)
    ids = [ontology.GENERIC_VERTEBRA, ontology.GENERIC_VERTEBRAL_BODY, ontology.GENERIC_DISC,
           ontology.SPINAL_CANAL, ontology.SPINAL_CORD]
    for k, sid in enumerate(ids):
        lab[k * 4 : k * 4 + 3, 5:10, 5:10] = sid
    res = export_labels(case, lab, tmp_path / "p.nii.gz", scheme="canonical")
    assert set(res.counts) == set(ids)


@pytest.fixture
def many_segments(monkeypatch):
    """Small volumes written as three deflate segments, as a large one is on three cores."""
    import napari_spine._threads as threads
    from napari_spine.io import _niftiwrite

    monkeypatch.setattr(threads, "cores", lambda: 3)
    monkeypatch.setattr(_niftiwrite, "_SEGMENT", 1024)
    seen, real = [], _niftiwrite.gzip_stream

    def counting(*args, **kwargs):
        st = real(*args, **kwargs)
        seen.append(len(st.segments))
        return st

    monkeypatch.setattr(_niftiwrite, "gzip_stream", counting)
    return seen


@pytest.mark.parametrize("segmented", [False, True])
@pytest.mark.parametrize("axcodes", ["RAS", "LPS", "PIR", "SAL", "ILP", "ARI"])
def test_export_bytes_equal_nibabels_own_file_for_every_axis_order(tmp_path, axcodes, segmented, request):
    """The in-memory writer against nibabel's writer: same header block, same voxels, after
    a load (the array is a view of the file's memory) and for a fresh array."""
    import gzip

    from napari_spine import load_case
    from napari_spine.synthetic import write_phantom

    seen = request.getfixturevalue("many_segments") if segmented else None
    made = make_phantom((14, 30, 22), (0.8, 1.1, 1.7), axcodes=axcodes, levels=("L2", "L5"), seed=3)
    img_path, lab_path = write_phantom(made, tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz")
    case = load_case(img_path, lab_path)
    for name, labels in (("loaded", case.labels), ("fresh", np.ascontiguousarray(case.labels))):
        out = tmp_path / f"{name}.nii.gz"
        export_labels(case, labels, out)
        ref_img = nib.load(str(lab_path))
        raw = gzip.decompress(out.read_bytes())
        ours = nib.Nifti1Image.from_bytes(raw)
        # nibabel writing the same data and header gives the same bytes
        want = nib.Nifti1Image(np.asanyarray(ours.dataobj), None, ours.header).to_bytes()
        assert raw == want
        assert np.array_equal(np.asanyarray(ours.dataobj), np.asanyarray(ref_img.dataobj))
        assert np.allclose(ours.affine, ref_img.affine, atol=1e-6)
    assert seen is None or seen == [3, 3]


def test_a_byte_changed_on_disk_fails_the_verification_and_keeps_the_old_file(tmp_path, monkeypatch):
    from napari_spine.io import export as export_mod

    case = make_phantom((12, 40, 30), levels=("L3", "L5"), seed=1)
    target = tmp_path / "labels.nii.gz"
    export_labels(case, None, target)
    before = target.read_bytes()
    real = export_mod._write_nifti

    def corrupting(tmp, img, level, name):
        written = real(tmp, img, level, name)
        data = bytearray(tmp.read_bytes())
        data[len(data) // 2] ^= 0x10  # the disk (or the page cache) flips a bit
        tmp.write_bytes(bytes(data))
        return written

    monkeypatch.setattr(export_mod, "_write_nifti", corrupting)
    edited = np.where(case.labels == 22, 0, case.labels).astype(case.labels.dtype)
    with pytest.raises(ExportError, match="bytes on disk differ"):
        export_labels(case, edited, target)
    assert target.read_bytes() == before and not list(tmp_path.glob("*.part*")) and \
        sorted(p.name for p in tmp_path.iterdir()) == ["labels.nii.gz"]


def test_a_stream_that_decodes_wrongly_is_caught_by_decoding_it_again(tmp_path, monkeypatch, many_segments):
    from napari_spine.io import _niftiwrite

    case = make_phantom((12, 40, 30), levels=("L3", "L5"), seed=1)
    real = _niftiwrite.gzip_stream

    def wrong(parts, name="", level=6, segments=None):  # a compressor bug: one voxel byte changed
        parts = [bytes(p) for p in parts]
        body = bytearray(parts[1])
        body[len(body) - 100] ^= 1  # in the last segment
        return real([parts[0], bytes(body)], name, level, segments)

    monkeypatch.setattr(_niftiwrite, "gzip_stream", wrong)
    with pytest.raises(ExportError, match="label voxels differ"):
        export_labels(case, None, tmp_path / "x.nii.gz")
    assert many_segments == [3]
    assert not (tmp_path / "x.nii.gz").exists()
