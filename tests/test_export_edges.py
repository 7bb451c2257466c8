"""Label export at its edges: defaults, header fields written for a labels file made from
the image's header, counts and names of structures kept outside the spine table, new native
ids for structures the file has no id for, and the ruler CSV's voxel columns."""

from __future__ import annotations

import csv
import dataclasses
import json

import nibabel as nib
import numpy as np
import pytest

from napari_spine import ExportError, export_labels, export_landmarks, load_case
from napari_spine.anatomy.labelnames import read_label_names
from napari_spine.io.nifti import load_labels_file
from napari_spine.measurements.rulers import Ruler

AFFINE = np.diag([1.5, 1.5, 3.0, 1.0])


def _xml(labels: dict[int, str]) -> bytes:
    """TotalSegmentator's XML label table, written here by hand."""
    rows = "\n".join(f'<Label Key="{k}" Red="0.0" Green="1.0" Blue="0.0" Alpha="1"><![CDATA[{v}]]></Label>'
                     for k, v in labels.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?> <CaretExtension> <VolumeInformation Index="0"> '
            f"<LabelTable>\n{rows}\n</LabelTable> </VolumeInformation></CaretExtension>").encode()


def _bands(ids, shape=(20, 24, 30), dtype=np.uint8):
    out = np.zeros(shape, dtype)
    for k, i in enumerate(ids):
        out[5:15, 8:16, shape[2] - 3 - 3 * k: shape[2] - 1 - 3 * k] = i
    return out


def _labels_file(path, data, names):
    img = nib.Nifti1Image(data, AFFINE)
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, _xml(names)))
    nib.save(img, str(path))
    return path


@pytest.fixture
def image_case(tmp_path):
    """A CT with no labels file: the labels' header is made from the image's."""
    img = nib.Nifti1Image(np.full((10, 12, 8), 300, np.int16), AFFINE)
    img.header["cal_min"], img.header["cal_max"] = -1000, 3000
    nib.save(img, str(tmp_path / "ct.nii.gz"))
    case = load_case(tmp_path / "ct.nii.gz")
    labels = np.zeros(case.shape, np.uint8)
    labels[2:5, 3:6, 1:4] = 22
    return case, labels


def test_a_result_is_frozen_and_drops_nothing_by_default(tmp_path, image_case):
    case, labels = image_case
    res = export_labels(case, labels, tmp_path / "l.nii.gz", scheme="canonical")
    assert res.dropped_voxels == 0 and res.counts == {22: 27}
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.counts = {}
    hdr = nib.load(res.path).header
    assert float(hdr["cal_min"]) == 0 and float(hdr["cal_max"]) == 0  # not the CT's window
    assert hdr.get_intent()[0] == "label"


def test_the_default_compression_is_level_6(tmp_path, image_case):
    case, labels = image_case
    plain = export_labels(case, labels, tmp_path / "a.nii.gz").path.read_bytes()
    six = export_labels(case, labels, tmp_path / "a6.nii.gz", compresslevel=6).path.read_bytes()
    one = export_labels(case, labels, tmp_path / "a1.nii.gz", compresslevel=1).path.read_bytes()
    # the gzip header carries the file name: compare what follows it
    body = lambda b, name: b[10 + len(name) + 1:]  # noqa: E731
    assert body(plain, "a.nii.gz") == body(six, "a6.nii.gz") != body(one, "a1.nii.gz")


def test_the_original_file_is_refused_by_default(tmp_path, image_case):
    case, labels = image_case
    before = (tmp_path / "ct.nii.gz").read_bytes()
    with pytest.raises(ExportError, match="dataset's original file"):
        export_labels(case, labels, tmp_path / "ct.nii.gz")
    assert (tmp_path / "ct.nii.gz").read_bytes() == before


def test_export_to_a_lumbar_scheme_without_the_cervical_ids(tmp_path, image_case):
    case, labels = image_case
    res = export_labels(case, labels, tmp_path / "ssm.nii.gz", scheme="ssmspine")  # L3 is 3 there
    back = np.asarray(nib.load(res.path).dataobj)
    assert set(np.unique(back)) == {0, 3} and res.counts == {3: 27}


def test_other_structures_kept_are_counted_and_nothing_is_dropped(tmp_path):
    ids = {5: "liver", 31: "vertebrae_L1", 20: "colon"}
    path = _labels_file(tmp_path / "total.nii.gz", _bands([5, 31, 20]), ids)
    case = load_labels_file(path)
    res = export_labels(case, None, tmp_path / "canon.nii.gz", scheme="canonical")
    src = np.asarray(nib.load(path).dataobj)
    assert res.dropped_voxels == 0
    assert res.counts[1005] == int((src == 5).sum()) and res.counts[1020] == int((src == 20).sum())
    assert res.counts[20] == int((src == 31).sum())
    names = read_label_names(res.path, nib.load(res.path).header).names
    assert names == {20: "L1", 1005: "liver", 1020: "colon"}
    plain = _labels_file(tmp_path / "spine.nii.gz", _bands([31]), {31: "vertebrae_L1"})
    res = export_labels(load_labels_file(plain), None, tmp_path / "c2.nii.gz", scheme="canonical")
    assert res.dropped_voxels == 0 and res.counts == {20: int((_bands([31]) == 31).sum())}


def test_a_file_with_its_own_label_table_gets_a_table_of_the_written_ids(tmp_path):
    ids = {31: "vertebrae_L1", 30: "vertebrae_L2"}
    path = _labels_file(tmp_path / "total.nii.gz", _bands([31, 30]), ids)
    res = export_labels(load_labels_file(path), None, tmp_path / "canon.nii.gz", scheme="canonical")
    hdr = nib.load(res.path).header
    texts = [e.get_content().decode() for e in hdr.extensions]
    assert sum("<LabelTable" in t for t in texts) == 1  # the source's table is replaced, not kept beside
    assert read_label_names(res.path, hdr).names == {20: "L1", 21: "L2"}


def test_structures_the_file_has_no_id_for_get_the_next_free_ids(tmp_path):
    """The file uses ids 1-6; C5 (anatomy id 5) and C6 (6) collide with its spleen and
    kidney, so painting them gives the ids after the largest in use: 7 and 8, named in the
    header table and the sidecar."""
    ids = {1: "liver", 2: "vertebrae_L1", 3: "vertebrae_L2", 4: "vertebrae_L3", 5: "spleen", 6: "kidney_left"}
    data = _bands([1, 2, 3, 4, 5, 6])
    path = _labels_file(tmp_path / "multi.nii.gz", data, ids)
    case = load_labels_file(path)
    edited = np.array(case.labels)
    top = np.zeros(edited.shape, bool)
    top[0, 0, 0:2] = True
    low = np.zeros(edited.shape, bool)
    low[19, 23, 0:3] = True
    edited[top] = 5  # C5
    edited[low] = 6  # C6
    res = export_labels(case, edited, tmp_path / "edited.nii.gz")
    from napari_spine import geometry

    back = geometry.to_display(np.asarray(nib.load(res.path).dataobj), case.source.ornt)
    assert set(back[top].tolist()) == {7} and set(back[low].tolist()) == {8}
    shown = geometry.to_display(data, case.source.ornt)
    assert np.array_equal(back[~(top | low)], shown[~(top | low)])  # the file's own ids elsewhere
    names = read_label_names(res.path, nib.load(res.path).header).names
    assert names[7] == "C5" and names[8] == "C6" and names[5] == "spleen"
    side = json.loads((tmp_path / "edited.json").read_text())["labels"]
    assert side["7"] == "C5" and side["8"] == "C6" and side["1"] == "liver"


def test_the_ruler_csv_holds_the_points_voxels_in_the_file(tmp_path):
    from napari_spine.geometry import display_index_to_file_index

    img = nib.Nifti1Image(np.zeros((9, 11, 13), np.int16), np.array(
        [[0, 0, -1.2, 50], [-0.9, 0, 0, 20], [0, 1.1, 0, -70], [0, 0, 0, 1.0]]))
    nib.save(img, str(tmp_path / "ct.nii.gz"))
    case = load_case(tmp_path / "ct.nii.gz")
    pts = np.array([[1.0, 2.0, 3.0], [4.0, 6.0, 5.0]])
    export_landmarks(case, tmp_path / "lm.csv", rulers=[Ruler("distance", pts, "x")])
    with open(tmp_path / "lm_rulers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    want = display_index_to_file_index(pts, case.source.ornt, case.source.shape)
    got = np.array([[float(r["i"]), float(r["j"]), float(r["k"])] for r in rows])
    np.testing.assert_allclose(got, want)
    assert [r["point"] for r in rows] == ["0", "1"] and len({tuple(w) for w in want}) == 2
    export_landmarks(case, tmp_path / "lm2.json", rulers=[Ruler("distance", pts, "x")])
    assert not (tmp_path / "lm2_rulers.csv").exists()  # a JSON document holds its rulers itself


def test_an_organ_id_past_64535_is_kept_in_32_bits(tmp_path):
    ids = {70000: "aorta", 9: "vertebrae_L1"}
    data = np.zeros((20, 24, 30), np.int32)
    data[5:15, 8:16, 27:29] = 70000
    data[5:15, 8:16, 24:26] = 9
    img = nib.Nifti1Image(data, AFFINE, dtype=np.int32)
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, _xml(ids)))
    nib.save(img, str(tmp_path / "big.nii.gz"))
    res = export_labels(load_labels_file(tmp_path / "big.nii.gz"), None, tmp_path / "c.nii.gz", scheme="canonical")
    back = np.asarray(nib.load(res.path).dataobj)
    assert back.dtype == np.uint32 and np.array_equal(back == 71000, data == 70000)


def test_a_file_without_a_label_table_gets_none_and_no_sidecar(tmp_path):
    data = _bands([20, 21])  # VerSe ids, no names anywhere
    nib.save(nib.Nifti1Image(data, AFFINE), str(tmp_path / "verse_seg.nii.gz"))
    case = load_labels_file(tmp_path / "verse_seg.nii.gz")
    res = export_labels(case, None, tmp_path / "out.nii.gz", scheme="canonical")
    assert len(nib.load(res.path).header.extensions) == 0
    assert not (tmp_path / "out.json").exists()


def test_other_extensions_stay_and_only_label_tables_are_replaced(tmp_path):
    ids = {31: "vertebrae_L1", 30: "vertebrae_L2"}
    img = nib.Nifti1Image(_bands([31, 30]), AFFINE)
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"acquired on scanner 3"))  # a comment
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, _xml(ids)))
    nib.save(img, str(tmp_path / "total.nii.gz"))
    res = export_labels(load_labels_file(tmp_path / "total.nii.gz"), None, tmp_path / "c.nii.gz",
                        scheme="canonical")
    texts = [e.get_content() for e in nib.load(res.path).header.extensions]
    assert b"acquired on scanner 3" in texts
    assert sum(b"<LabelTable" in t for t in texts) == 1 and not any(b"vertebrae_L1" in t for t in texts)


def test_export_to_a_tools_scheme_names_its_own_classes(tmp_path):
    ids = {31: "vertebrae_L1", 30: "vertebrae_L2"}
    path = _labels_file(tmp_path / "total.nii.gz", _bands([31, 30]), ids)
    case = load_labels_file(path)
    res = export_labels(case, None, tmp_path / "ts.nii.gz", scheme="totalseg_total")
    names = read_label_names(res.path, nib.load(res.path).header).names
    assert names == {31: "vertebrae_L1", 30: "vertebrae_L2"}  # TotalSegmentator's words, not "L1"


def test_a_painted_c1_gets_an_id_in_a_file_without_one(tmp_path):
    ids = {1: "liver", 2: "vertebrae_L1"}
    path = _labels_file(tmp_path / "multi.nii.gz", _bands([1, 2]), ids)
    case = load_labels_file(path)
    edited = np.array(case.labels)
    spot = np.zeros(edited.shape, bool)
    spot[0, 0, 0:3] = True
    edited[spot] = 1  # C1: anatomy id 1, which is the liver's id in this file
    import time

    t0 = time.perf_counter()
    res = export_labels(case, edited, tmp_path / "c1.nii.gz")
    assert 0 <= res.seconds <= time.perf_counter() - t0
    from napari_spine import geometry

    back = geometry.to_display(np.asarray(nib.load(res.path).dataobj), case.source.ornt)
    assert set(back[spot].tolist()) == {3}  # the next free id, not the liver's, and not 0
    assert read_label_names(res.path, nib.load(res.path).header).names[3] == "C1"


def test_no_free_id_left_in_an_8_bit_file(tmp_path):
    data = _bands([2, 254])
    path = _labels_file(tmp_path / "full.nii.gz", data, {2: "vertebrae_L1", 254: "liver"})
    case = load_labels_file(path)
    edited = np.array(case.labels)
    edited[0, 0, 0] = 2  # C2: anatomy id 2 is L1's id here, so it needs a new one: 255 still fits
    res = export_labels(case, edited, tmp_path / "ok.nii.gz")
    assert 255 in np.unique(np.asarray(nib.load(res.path).dataobj))
    data = _bands([2, 255])
    path = _labels_file(tmp_path / "full2.nii.gz", data, {2: "vertebrae_L1", 255: "liver"})
    case = load_labels_file(path)
    edited = np.array(case.labels)
    edited[0, 0, 0] = 2
    from napari_spine import LabelMapError

    with pytest.raises(LabelMapError, match="no free uint8 id left for C2"):
        export_labels(case, edited, tmp_path / "no.nii.gz")


def test_image_export_defaults(tmp_path, image_case):
    from napari_spine.io.export import export_image

    case, _ = image_case
    a = export_image(case, tmp_path / "a.nii.gz").read_bytes()
    b = export_image(case, tmp_path / "b.nii.gz", compresslevel=6).read_bytes()
    assert a[16:] == b[16:]  # past the names in the gzip headers
    with pytest.raises(ExportError, match="dataset's original file"):
        export_image(case, tmp_path / "ct.nii.gz")
