"""Label names read from the files themselves: header label tables, sidecars, the matcher.

Every fixture is written here by hand in the format its tool documents (TotalSegmentator's
XML header extension, nnU-Net dataset.json, BIDS dseg.tsv, ITK-SNAP label descriptions,
3D Slicer colour tables), not with napari-spine's writers.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_spine import LabelMapError, load_case, ontology
from napari_spine.anatomy.labelnames import match_anatomy, read_label_names
from napari_spine.io.nifti import load_labels_file

AFFINE = np.diag([1.5, 1.5, 3.0, 1.0])


def _xml(labels: dict[int, str], style: str = "exact") -> bytes:
    if style == "exact":  # TotalSegmentator's own form
        rows = "\n".join(f'<Label Key="{k}" Red="0.0" Green="1.0" Blue="0.0" Alpha="1"><![CDATA[{v}]]></Label>'
                         for k, v in labels.items())
    else:  # minor variants: single quotes, other attribute order, no CDATA, lower-case tags
        rows = "\n".join(f"<label Alpha='1' key='{k}' red='1' green='0' blue='0'>{v}</label>"
                         for k, v in labels.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?> <CaretExtension> <VolumeInformation Index="0"> '
            f"<LabelTable>\n{rows}\n</LabelTable> </VolumeInformation></CaretExtension>").encode()


def _labels_file(path, data, header_labels=None, style="exact", raw_ext: bytes | None = None):
    img = nib.Nifti1Image(data, AFFINE)
    if header_labels is not None or raw_ext is not None:
        content = raw_ext if raw_ext is not None else _xml(header_labels, style)
        img.header.extensions.append(nib.nifti1.Nifti1Extension(0, content))
    nib.save(img, str(path))
    return path


def _bands(ids, shape=(20, 24, 30), dtype=np.uint8) -> np.ndarray:
    """Ids in bands from top (high z = superior) to bottom, as a spine lies."""
    out = np.zeros(shape, dtype)
    for k, i in enumerate(ids):
        out[5:15, 8:16, shape[2] - 3 - 3 * k: shape[2] - 1 - 3 * k] = i
    return out


# -- the matcher ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("vertebrae_L1", "L1"), ("L1", "L1"), ("L1 vertebra", "L1"), ("vertebra_L1", "L1"),
    ("vertebrae_S1", "S1"), ("sacrum", "S1"), ("vertebrae_T13", "T13"), ("vertebrae_C1", "C1"),
    ("vertebrae_body", "Vertebral body (level not assigned)"),
    ("vertebrae", "Vertebra (level not assigned)"),
    ("intervertebral_discs", "Disc (level not assigned)"), ("disc_L4_L5", "L4/L5"),
    ("L4/L5", "L4/L5"), ("L5-S1", "L5/S1"), ("disc_T12_L1", "T12/L1"),
    ("spinal_cord", "Spinal cord"), ("spinal_canal", "Spinal canal"), ("Spinal cord", "Spinal cord"),
])
def test_names_real_tools_use(name, expected):
    assert ontology.name_of(match_anatomy(name)) == expected


@pytest.mark.parametrize("name", ["liver", "rib_left_1", "kidney_right", "femur", "vertebrae_X1", "L99", ""])
def test_structures_outside_the_spine_table_match_nothing(name):
    assert match_anatomy(name) is None


# -- header label tables ---------------------------------------------------------------------
def test_totalsegmentator_vertebrae_body_is_bodies_and_discs_not_c1_c2(tmp_path):
    p = _labels_file(tmp_path / "vertebrae_body.nii.gz", _bands([1, 2, 1, 2, 1]),
                     {1: "vertebrae_body", 2: "intervertebral_discs"})
    case = load_labels_file(p)
    assert [ontology.name_of(i) for i in case.structures_present] == [
        "Vertebral body (level not assigned)", "Disc (level not assigned)"]


def test_total_mr_organs_are_not_vertebrae(tmp_path):
    mr = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 5: "liver", 18: "sacrum", 19: "vertebrae",
          20: "intervertebral_discs", 21: "spinal_cord"}
    p = _labels_file(tmp_path / "total_mr.nii.gz", _bands([1, 2, 3, 5, 19, 20, 19, 18, 21]), mr, style="variant")
    case = load_labels_file(p)
    names = {ontology.name_of(i) for i in case.structures_present}
    assert names == {"Vertebra (level not assigned)", "Disc (level not assigned)", "S1", "Spinal cord"}
    assert not names & {"C1", "C2", "C3", "C5"}  # what the file-name guess used to show
    assert any("4 structure(s) outside the spine table" in w and "liver" in w for w in case.warnings)


def test_a_totalsegmentator_total_file_beside_its_ct_opens_with_names(realdata):
    folder = realdata / "totalseg_small"
    case = load_case(folder / "example_ct_sm.nii.gz", folder / "multilabel" / "example_seg.nii.gz")
    present = [ontology.name_of(i) for i in case.structures_present]
    assert present == ["T11", "T12", "L1", "L2", "Spinal cord"]
    truth = np.asarray(nib.load(folder / "multilabel" / "example_seg.nii.gz").dataobj)
    # every voxel the file calls vertebrae_L1 (31) is L1 (20) in the anatomy view
    from napari_spine import geometry

    shown = geometry.to_display(truth, case.source.ornt)
    assert np.array_equal(np.asarray(case.labels) == 20, shown == 31)
    assert any("36 structure(s) outside the spine table" in w and "aorta" in w for w in case.warnings)


def test_malformed_xml_is_a_warning_and_a_sidecar_is_used(tmp_path):
    p = _labels_file(tmp_path / "x_seg.nii.gz", _bands([20, 21]),
                     raw_ext=b"<LabelTable><Label Key=oops>L1</Label")
    (tmp_path / "x_seg.json").write_text(json.dumps({"labels": {"20": "vertebrae_L1", "21": "vertebrae_L2"}}))
    case = load_labels_file(p)
    assert [ontology.name_of(i) for i in case.structures_present] == ["L1", "L2"]
    assert any("label table could not be read" in w for w in case.warnings)


def test_header_wins_over_a_contradicting_sidecar(tmp_path):
    p = _labels_file(tmp_path / "y_seg.nii.gz", _bands([1, 2]), {1: "vertebrae_L3", 2: "vertebrae_L4"})
    (tmp_path / "y_seg.json").write_text(json.dumps({"labels": {"1": "liver", "2": "vertebrae_L4"}}))
    names = read_label_names(p, nib.load(p).header)
    assert names.source == "file header" and names.names[1] == "vertebrae_L3"
    assert any("y_seg.json" in w and "'vertebrae_L3' vs 'liver'" in w for w in names.warnings)


def test_a_label_named_twice_keeps_the_first_name(tmp_path):
    xml = _xml({1: "vertebrae_L1"}).replace(b"</LabelTable>",
                                            b'<Label Key="1"><![CDATA[liver]]></Label></LabelTable>')
    p = _labels_file(tmp_path / "d_seg.nii.gz", _bands([1]), raw_ext=xml)
    names = read_label_names(p, nib.load(p).header)
    assert names.names == {1: "vertebrae_L1"} and any("named twice" in w for w in names.warnings)


def test_an_id_nobody_names_is_an_error_naming_the_option(tmp_path):
    p = _labels_file(tmp_path / "z_seg.nii.gz", _bands([1, 2, 7]), {1: "vertebrae_L1", 2: "vertebrae_L2"})
    with pytest.raises(LabelMapError, match=r"z_seg\.nii\.gz: label id\(s\) 7 are not named.*--scheme"):
        load_labels_file(p)


# -- sidecars --------------------------------------------------------------------------------
def test_nnunet_dataset_json_in_the_parent_folder(tmp_path):
    (tmp_path / "labelsTr").mkdir()
    (tmp_path / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "MRI"}, "labels": {"background": 0, "vertebrae_C3": 1, "disc_C3_C4": 2,
                                                   "vertebrae_C4": 3}, "numTraining": 1}))
    p = _labels_file(tmp_path / "labelsTr" / "case_001.nii.gz", _bands([1, 2, 3]))
    case = load_labels_file(p)
    assert [ontology.name_of(i) for i in case.structures_present] == ["C3", "C4", "C3/C4"]


def test_bids_dseg_tsv(tmp_path):
    (tmp_path / "sub-01_dseg.tsv").write_text("index\tname\tabbreviation\n1\tspinal_cord\tSC\n2\tspinal_canal\tCSF\n")
    p = _labels_file(tmp_path / "sub-01_dseg.nii.gz", _bands([1, 2]))
    case = load_labels_file(p)
    assert [ontology.name_of(i) for i in case.structures_present] == ["Spinal cord", "Spinal canal"]


def test_itksnap_label_description(tmp_path):
    (tmp_path / "seg.txt").write_text(
        "################################################\n# ITK-SnAP Label Description File\n"
        '    0     0    0    0        0  0  0    "Clear Label"\n'
        '    1   255    0    0        1  1  1    "L5"\n'
        '    2     0  255    0        1  1  1    "L5/S1 disc"\n'
        '    3     0    0  255        1  1  1    "sacrum"\n')
    p = _labels_file(tmp_path / "seg.nii.gz", _bands([1, 2, 3]))
    names = read_label_names(p, nib.load(p).header)
    assert names.colors[1] == (1.0, 0.0, 0.0, 1.0)
    case = load_labels_file(p)
    assert [ontology.name_of(i) for i in case.structures_present] == ["L5", "S1", "L5/S1"]


def test_slicer_colour_table(tmp_path):
    (tmp_path / "mask.ctbl").write_text("# Color table file mask.ctbl\n# 3 values\n0 Background 0 0 0 0\n"
                                        "4 vertebrae_T12 230 120 20 255\n9 spinal_cord 200 200 0 255\n")
    p = _labels_file(tmp_path / "mask.nii.gz", _bands([4, 9]))
    case = load_labels_file(p)
    assert [ontology.name_of(i) for i in case.structures_present] == ["T12", "Spinal cord"]


def test_a_file_that_names_nothing_keeps_its_dataset_scheme(tmp_path):
    # no header table, no sidecar: VerSe/TPTBox numbering as before
    p = _labels_file(tmp_path / "sub-1_seg-vert_msk.nii.gz", _bands([20, 21, 120]))
    case = load_labels_file(p)
    assert case.label_scheme == "verse"
    assert [ontology.name_of(i) for i in case.structures_present] == ["L1", "L2", "L1/L2"]


# -- a folder of one mask per class (TotalSegmentator's default output) -----------------------
def test_the_totalsegmentator_folder_is_one_named_label_map(realdata):
    from napari_spine.io.masks import is_mask_folder, load_mask_folder

    folder = realdata / "totalseg_small" / "segmentations"
    assert is_mask_folder(folder)
    case = load_mask_folder(folder)
    assert [ontology.name_of(i) for i in case.structures_present] == ["T11", "T12", "L1", "L2", "Spinal cord"]
    l1 = np.asarray(nib.load(folder / "vertebrae_L1.nii.gz").dataobj) != 0
    from napari_spine import geometry

    assert np.array_equal(np.asarray(case.labels) == 20, geometry.to_display(l1, case.source.ornt))
    assert any("35 structure(s) outside the spine table" in w for w in case.warnings)


def _mask(path, box, shape=(10, 12, 14), affine=AFFINE):
    data = np.zeros(shape, np.uint8)
    data[box] = 1
    nib.save(nib.Nifti1Image(data, affine), str(path))


def test_overlapping_masks_are_reported_and_the_first_class_keeps_its_voxels(tmp_path):
    from napari_spine.io.masks import load_mask_folder

    _mask(tmp_path / "vertebrae_L1.nii.gz", np.s_[2:6, 2:6, 8:12])
    _mask(tmp_path / "vertebrae_L2.nii.gz", np.s_[2:6, 2:6, 3:9])  # one slice shared with L1
    _mask(tmp_path / "liver.nii.gz", np.s_[7:9, 0:3, 0:3])
    _mask(tmp_path / "spinal_cord.nii.gz", np.s_[0:0, 0:0, 0:0])  # empty, as most are
    case = load_mask_folder(tmp_path)
    lab = np.asarray(case.labels)
    assert (lab == 20).sum() == 4 * 4 * 4 and (lab == 21).sum() == 4 * 4 * 5  # L1 kept its slice
    assert any("16 voxel(s) of vertebrae_L2 are also in vertebrae_L1" in w for w in case.warnings)
    assert any("1 structure(s) outside the spine table" in w and "liver" in w for w in case.warnings)


def test_bad_mask_folders(tmp_path):
    from napari_spine import GeometryError, SpineIOError
    from napari_spine.io.masks import load_mask_folder

    empty = tmp_path / "empty"
    empty.mkdir()
    _mask(empty / "vertebrae_L1.nii.gz", np.s_[0:0, 0:0, 0:0])
    _mask(empty / "vertebrae_L2.nii.gz", np.s_[0:0, 0:0, 0:0])
    with pytest.raises(SpineIOError, match=r"empty: every mask in this folder is empty \(2 files\)"):
        load_mask_folder(empty)
    grids = tmp_path / "grids"
    grids.mkdir()
    _mask(grids / "vertebrae_L1.nii.gz", np.s_[1:3, 1:3, 1:3])
    _mask(grids / "vertebrae_L2.nii.gz", np.s_[1:3, 1:3, 1:3], shape=(10, 12, 15))
    with pytest.raises(GeometryError, match=r"vertebrae_L2\.nii\.gz: this mask is on another grid"):
        load_mask_folder(grids)
    none = tmp_path / "none"
    none.mkdir()
    with pytest.raises(SpineIOError, match="no NIfTI masks"):
        load_mask_folder(none)


# -- native ids are the data: lossless round trips ------------------------------------------------
@pytest.mark.parametrize("dtype, ids", [
    (np.uint8, {1: "liver", 2: "vertebrae_L1", 3: "vertebrae_L2", 250: "rib_left_1"}),
    (np.uint16, {1: "liver", 7: "vertebrae_L1", 8: "intervertebral_discs", 300: "kidney_left"}),
    (np.int32, {4: "spleen", 9: "vertebrae_T12", 70000: "aorta"}),
    (np.float64, {1: "liver", 2: "vertebrae_L1", 3: "spinal_cord"}),
])
def test_native_export_is_voxel_identical_organs_and_all(tmp_path, dtype, ids):
    from napari_spine import export_labels

    data = _bands(list(ids), dtype=np.int64)
    data[0:3, 0:4, 0:5] = list(ids)[0]  # an organ block off the spine
    path = tmp_path / "multi.nii.gz"
    img = nib.Nifti1Image(data.astype(dtype), AFFINE, dtype=dtype)
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, _xml(ids)))
    nib.save(img, str(path))
    image = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(data.shape, np.int16), AFFINE), str(image))
    case = load_case(image, path)
    out = export_labels(case, None, tmp_path / "back.nii.gz").path
    back = nib.load(out)
    assert back.header.get_data_dtype() == np.dtype(dtype)
    assert np.array_equal(np.asarray(back.dataobj), np.asarray(nib.load(path).dataobj))
    assert read_label_names(out, back.header).names == ids  # the header extension is kept


def test_edits_map_back_to_native_ids_and_new_structures_are_named(tmp_path):
    from napari_spine import export_labels

    ids = {1: "liver", 2: "vertebrae_L1", 3: "vertebrae_L2", 61: "aorta"}
    data = _bands([1, 2, 3, 61])
    path = _labels_file(tmp_path / "multi.nii.gz", data, ids)
    case = load_labels_file(path)
    lab = np.array(case.labels)
    l1 = lab == 20
    lab[l1] = 21  # the annotator relabels L1 as L2 ...
    canal = np.zeros_like(l1)
    canal[10:12, 0:2, 0:2] = True
    lab[canal] = 61  # ... and paints a spinal canal, which this file has no id for (61 is aorta)
    out = export_labels(case, lab, tmp_path / "edited.nii.gz").path
    got = np.asarray(nib.load(out).dataobj)
    from napari_spine import geometry

    shown = lambda a: geometry.to_display(a, case.source.ornt)  # noqa: E731
    assert np.array_equal(shown(got)[l1], np.full(l1.sum(), 3))  # L2's native id
    assert set(np.unique(shown(got)[canal])) == {62}  # the next free id, not aorta's 61
    untouched = ~(l1 | canal)
    assert np.array_equal(shown(got)[untouched], shown(data)[untouched])  # liver and aorta kept
    names = read_label_names(out, nib.load(out).header)
    assert names.names[62] == "Spinal canal" and names.names[61] == "aorta"
    assert json.loads((tmp_path / "edited.json").read_text())["labels"]["62"] == "Spinal canal"
    again = load_labels_file(out)
    assert {ontology.name_of(i) for i in again.structures_present} == {"L2", "Spinal canal"}


def test_a_prediction_never_carries_the_loaded_files_organs(tmp_path):
    from napari_spine import export_labels

    ids = {1: "liver", 2: "vertebrae_L1"}
    path = _labels_file(tmp_path / "multi.nii.gz", _bands([1, 2]), ids)
    case = load_labels_file(path)
    predicted = case.with_labels(np.where(np.asarray(case.labels) == 20, 21, 0).astype(np.uint8))
    assert predicted.native_labels is None
    got = np.asarray(nib.load(export_labels(predicted, None, tmp_path / "p.nii.gz", scheme="canonical").path).dataobj)
    assert set(np.unique(got)) == {0, 21}


# -- the label table: one source of names per case ---------------------------------------------
def test_the_label_table_says_what_each_native_id_is_and_where_the_name_came_from(tmp_path):
    ids = {1: "liver", 2: "vertebrae_L1", 3: "intervertebral_discs"}
    case = load_labels_file(_labels_file(tmp_path / "m.nii.gz", _bands([1, 2, 3]), ids))
    table = case.label_table()
    assert {k: (e.name, e.anatomy_id, e.source) for k, e in table.items()} == {
        1: ("liver", None, "file header"), 2: ("L1", 20, "file header"),
        3: ("Disc (level not assigned)", 100, "file header")}
    assert [e.name for e in case.other_structures()] == ["liver"]
    assert "other structures (1): liver" in case.describe()
    # a dataset's documented scheme, and a scheme that leaves ids unexplained
    cspine = load_case(_labels_file(tmp_path / "x.nii.gz", _bands([1])),
                       _labels_file(tmp_path / "x_SEG.nii.gz", _bands([1, 2])), label_scheme="cspineseg")
    assert {e.source for e in cspine.label_table().values()} == {"dataset"}
    total = load_labels_file(_labels_file(tmp_path / "t.nii.gz", _bands([5, 31, 200])),
                             label_scheme="totalseg_total")
    assert {k: e.name for k, e in total.label_table().items()} == {5: "liver", 31: "L1",
                                                                   200: "Label 200 (unknown)"}
    plain = load_labels_file(_labels_file(tmp_path / "v_seg.nii.gz", _bands([20, 120])))
    assert {k: (e.name, e.source) for k, e in plain.label_table().items()} == {
        20: ("L1", "scheme"), 120: ("L1/L2", "scheme")}


# -- a guess that does not hold is shown as a guess ----------------------------------------------
def test_organs_that_would_read_as_c1_c5_come_out_unknown(tmp_path):
    # five large blobs numbered 1-5, in scrambled head-to-foot order: not C1-C5
    data = np.zeros((60, 60, 60), np.uint8)
    for k, i in enumerate([3, 1, 5, 2, 4]):
        data[5:55, 5:55, 2 + 11 * k: 12 + 11 * k] = i
    affine = np.diag([2.0, 2.0, 2.0, 1.0])  # 50 x 50 x 10 voxels of 8 uL: 200 mL each
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "organs_seg.nii.gz"))
    case = load_labels_file(tmp_path / "organs_seg.nii.gz")
    assert case.structures_present == ()  # nothing is called a vertebra
    assert {k: (e.name, e.source) for k, e in case.label_table().items()} == {
        i: (f"Label {i} (unknown)", "unknown") for i in range(1, 6)}
    assert any("do not look like 'verse' spine labels" in w and "head-to-foot" in w and "--scheme" in w
               for w in case.warnings)
    assert len(case.warnings) == 1  # said once: not again as structures outside the spine table
    # the same ids in spine order and spine sizes are read as vertebrae
    spine = np.zeros((60, 60, 60), np.uint8)
    for k, i in enumerate([1, 2, 3, 4, 5]):
        spine[25:35, 25:35, 55 - 11 * k: 63 - 11 * k] = i
    nib.save(nib.Nifti1Image(spine, affine), str(tmp_path / "spine_seg.nii.gz"))
    ok = load_labels_file(tmp_path / "spine_seg.nii.gz")
    assert [ontology.name_of(i) for i in ok.structures_present] == ["C1", "C2", "C3", "C4", "C5"]
    assert not any("do not look like" in w for w in ok.warnings)


# -- the tools' numeric class lists ------------------------------------------------------------
@pytest.mark.parametrize("scheme, native, expected", [
    ("totalseg_total", {25: "S1", 31: "L1", 50: "C1", 79: "Spinal cord", 5: None}, {5: "liver"}),
    ("totalseg_total_mr", {18: "S1", 19: "Vertebra (level not assigned)", 20: "Disc (level not assigned)",
                           21: "Spinal cord", 5: None}, {5: "liver"}),
    ("totalseg_vertebrae_mr", {1: "S1", 2: "L5", 6: "L1", 7: "T12", 18: "T1", 19: "C7", 25: "C1"}, {}),
    ("totalseg_vertebrae_body", {1: "Vertebral body (level not assigned)", 2: "Disc (level not assigned)"}, {}),
    # TotalSpineSeg's own tss_map (resources/labels_maps/tss_map.json), typed in from its release
    ("totalspineseg", {1: "Spinal cord", 2: "Spinal canal", 11: "C1", 17: "C7", 21: "T1", 32: "T12",
                       41: "L1", 45: "L5", 46: "L6", 50: "S1"}, {}),
    ("totalspineseg", {63: "C2/C3", 67: "C6/C7", 71: "C7/T1", 72: "T1/T2", 82: "T11/T12", 91: "T12/L1",
                       92: "L1/L2", 95: "L4/L5", 100: "L5/S1"}, {}),
    ("totalspineseg_v1", {18: "L5", 22: "L1", 41: "C1", 92: "S1", 200: "Spinal cord", 201: "Spinal canal",
                          202: "L5/S1", 207: "T12/L1", 224: "C2/C3"}, {}),
    ("verse", {20: "L1", 26: "S1", 28: "T13", 60: "Spinal cord", 61: "Spinal canal", 120: "L1/L2",
               220: "L1 endplate", 41: "Vertebral arch", 50: "Vertebral body (level not assigned)"}, {}),
])
def test_each_tools_class_list(tmp_path, scheme, native, expected):
    case = load_labels_file(_labels_file(tmp_path / "x.nii.gz", _bands(list(native), dtype=np.uint8)),
                            label_scheme=scheme)
    table = case.label_table()
    for i, name in native.items():
        if name is not None:
            assert table[i].name == name and table[i].is_spine, (i, table[i])
    for i, name in expected.items():
        assert table[i].name == name and not table[i].is_spine


# -- pairing by the ecosystems' naming -------------------------------------------------------
def test_images_find_their_labels_by_bids_tptbox_and_nnunet_names(tmp_path, realdata):
    from napari_spine.io.nifti import find_labels_for

    folder = realdata / "tptbox_ct"  # TPTBox/BIDS: seg-vert preferred over seg-subreg
    assert find_labels_for(folder / "sub-ct_label-22_ct.nii.gz").name == "sub-ct_seg-vert_label-22_msk.nii.gz"
    for name in ("sub-01_ses-1_T2w", "sub-01_ses-1_seg-subreg_msk", "sub-02_ses-1_seg-vert_msk"):
        _labels_file(tmp_path / f"{name}.nii.gz", _bands([1]))
    # the mask of another subject is never taken; the only one of this subject is
    assert find_labels_for(tmp_path / "sub-01_ses-1_T2w.nii.gz").name == "sub-01_ses-1_seg-subreg_msk.nii.gz"
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    _labels_file(tmp_path / "imagesTr" / "case_007_0000.nii.gz", _bands([1]))
    _labels_file(tmp_path / "labelsTr" / "case_007.nii.gz", _bands([1]))
    assert find_labels_for(tmp_path / "imagesTr" / "case_007_0000.nii.gz") == tmp_path / "labelsTr" / "case_007.nii.gz"
    _labels_file(tmp_path / "ct.nii.gz", _bands([1]))
    assert find_labels_for(tmp_path / "ct.nii.gz") is None


def test_an_sct_cord_labelled_by_level_is_cord_not_vertebrae(realdata, tmp_path):
    from napari_spine import export_labels

    path = realdata / "sct_cervical" / "t2_t2_seg-manual_labeled.nii.gz"
    case = load_case(realdata / "sct_cervical" / "t2_t2.nii.gz", path)
    assert [ontology.name_of(i) for i in case.structures_present] == ["Spinal cord"]
    assert {k: e.name for k, e in case.label_table().items()} == {
        2: "Spinal cord at C2", 3: "Spinal cord at C3", 4: "Spinal cord at C4", 5: "Spinal cord at C5"}
    truth = np.asarray(nib.load(path).dataobj)
    back = nib.load(export_labels(case, None, tmp_path / "cord.nii.gz").path)
    assert back.header.get_data_dtype() == truth.dtype and np.array_equal(np.asarray(back.dataobj), truth)


# -- every real file names itself correctly, without a scheme -------------------------------------
@pytest.mark.parametrize("rel, names, source", [
    ("totalseg_small/multilabel/example_seg.nii.gz", ["T11", "T12", "L1", "L2", "Spinal cord"], "file header"),
    ("totalseg_small/segmentations", ["T11", "T12", "L1", "L2", "Spinal cord"], "file names"),
    ("tptbox_ct/sub-ct_seg-vert_label-22_msk.nii.gz", ["L2", "L3", "L4"], "scheme"),
    ("tptbox_mri/sub-mri_seg-vert_label-6_msk.nii.gz",
     ["C5", "C6", "C7", "C5/C6", "C6/C7", "C5 endplate", "C6 endplate", "C7 endplate"], "scheme"),
    ("tptbox_ct/sub-ct_seg-subreg_label-22_msk.nii.gz", None, "scheme"),
    ("sct_cervical/t1_t1w_seg-manual.nii.gz", ["Spinal cord"], "guess"),
    ("sct_cervical/t2_t2_seg-manual_labeled.nii.gz", ["Spinal cord"], "scheme"),
])
def test_every_real_file_opens_with_its_names(realdata, rel, names, source):
    from napari_spine.io.masks import load_mask_folder

    path = realdata / rel
    case = load_mask_folder(path) if path.is_dir() else load_labels_file(path)
    shown = [ontology.name_of(i) for i in case.structures_present]
    if names is None:  # TPTBox sub-regions 41-50: arch, processes, body border and body
        assert case.structures_present == tuple(range(41, 51)) and "Vertebral arch" in shown
    else:
        assert shown == names
    assert {e.source for e in case.label_table().values() if e.is_spine} == {source}
    assert not any(n in ("C1", "C2") for n in shown)


def test_a_one_valued_blob_that_is_no_cord_is_not_called_c1(tmp_path):
    cube = np.zeros((50, 50, 50), np.uint8)
    cube[5:45, 5:45, 5:45] = 1  # 40 x 40 x 40 voxels of 2 mm: 80 mm tall, 512 mL
    nib.save(nib.Nifti1Image(cube, np.diag([2.0, 2.0, 2.0, 1.0])), str(tmp_path / "blob_seg.nii.gz"))
    case = load_labels_file(tmp_path / "blob_seg.nii.gz")
    assert case.structures_present == () and case.label_table()[1].name == "Label 1 (unknown)"
    assert any("taller head-to-foot than any vertebra" in w for w in case.warnings)


def test_canonical_export_keeps_other_structures_named_or_says_what_it_dropped(tmp_path):
    from napari_spine import export_labels

    ids = {5: "liver", 31: "vertebrae_L1", 79: "spinal_cord", 20: "colon"}  # 20 is L1 in canonical ids
    path = _labels_file(tmp_path / "total.nii.gz", _bands([5, 31, 79, 20]), ids)
    case = load_labels_file(path)
    res = export_labels(case, None, tmp_path / "canon.nii.gz", scheme="canonical")
    got = np.asarray(nib.load(res.path).dataobj)
    src = np.asarray(nib.load(path).dataobj)
    assert np.array_equal(got == 20, src == 31) and np.array_equal(got == 60, src == 79)
    assert np.array_equal(got == 1005, src == 5) and np.array_equal(got == 1020, src == 20)
    back = load_labels_file(res.path)  # the written table names the written ids, not the source's
    assert [ontology.name_of(i) for i in back.structures_present] == ["L1", "Spinal cord"]
    assert {e.name for e in back.other_structures()} == {"liver", "colon"}
    dropped = export_labels(case, None, tmp_path / "spine_only.nii.gz", scheme="canonical",
                            other_structures="drop")
    assert dropped.dropped_voxels == int(np.isin(src, (5, 20)).sum()) > 0
    assert set(np.unique(np.asarray(nib.load(dropped.path).dataobj))) == {0, 20, 60}


# -- sidecars that contradict themselves ------------------------------------------------------
_TSV_DUP_ID = "index\tname\n5\tvertebrae_C5\n6\tvertebrae_C6\n5\tvertebrae_T5\n"
_TSV_DUP_NAME = "index\tname\n5\tvertebrae_C5\n7\tvertebrae_C7\n9\tvertebrae_C7\n"


@pytest.mark.parametrize("write", ["tsv", "itksnap", "slicer", "json"])
def test_an_id_named_twice_keeps_its_first_name_and_says_both_lines(tmp_path, write):
    rows = [(5, "vertebrae_C5"), (6, "vertebrae_C6"), (5, "vertebrae_T5")]
    _sidecar(tmp_path, write, rows)
    p = _labels_file(tmp_path / "sub-01_dseg.nii.gz", _bands([5, 6]))
    names = read_label_names(p, nib.load(p).header)
    assert names.names[5] == "vertebrae_C5"  # never T5: the file's first word for 5
    assert any("label 5 is named twice, 'vertebrae_C5'" in w and "'vertebrae_T5'" in w for w in names.warnings)
    case = load_labels_file(p)
    assert [ontology.name_of(i) for i in case.structures_present] == ["C5", "C6"]
    assert any("named twice" in w for w in case.warnings)


@pytest.mark.parametrize("write", ["tsv", "itksnap", "slicer"])
def test_two_ids_with_one_name_are_never_merged_silently(tmp_path, write):
    _sidecar(tmp_path, write, [(5, "vertebrae_C5"), (7, "vertebrae_C7"), (9, "vertebrae_C7")])
    p = _labels_file(tmp_path / "sub-01_dseg.nii.gz", _bands([5, 7, 9]))
    names = read_label_names(p, nib.load(p).header)
    assert names.names == {5: "vertebrae_C5", 7: "vertebrae_C7"}
    warning = next(w for w in names.warnings if "names two labels" in w)
    assert "7 (line" in warning and "9 (line" in warning and "left unnamed rather than merged" in warning
    with pytest.raises(LabelMapError, match=r"label id\(s\) 9 are not named"):  # said, never C7 twice
        load_labels_file(p)


def _sidecar(folder, kind, rows):
    if kind == "tsv":
        (folder / "sub-01_dseg.tsv").write_text("index\tname\n" + "".join(f"{i}\t{n}\n" for i, n in rows))
    elif kind == "itksnap":
        (folder / "sub-01_dseg.txt").write_text("# ITK-SnAP Label Description File\n" + "".join(
            f'  {i}  255 0 0  1 1 1  "{n}"\n' for i, n in rows))
    elif kind == "slicer":
        (folder / "sub-01_dseg.ctbl").write_text("# Color table\n" + "".join(f"{i} {n} 1 2 3 255\n" for i, n in rows))
    else:  # napari-spine's JSON sidecar, id -> name, with a repeated key
        body = ", ".join(f'"{i}": "{n}"' for i, n in rows)
        (folder / "sub-01_dseg.json").write_text('{"labels": {' + body + "}}")
