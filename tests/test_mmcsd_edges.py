"""MMCSD adapter at its edges, with trees and spreadsheets written here by hand (datasets.md
1.2 and 1.5): patient IDs, cell values, out-of-range and unknown codes, duplicate rows and
split files, sheet choice, sequence folders, detection and the sequence a case opens."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_spine import open_dataset
from napari_spine.datasets.mmcsd import MMCSDAdapter, _num, _parse_rows, patient_id, read_clinical
from napari_spine.errors import SpineIOError


@pytest.mark.parametrize("text,pid", [("17", 17), ("MMCSD_0017", 17), ("17.0", 17), (" 003 ", 3),
                                      ("a_b_120", 120), ("12a", None), ("x_", None), ("1.5", None)])
def test_patient_id(text, pid):
    assert patient_id(text) == pid


@pytest.mark.parametrize("cell,value", [(None, None), ("", None), ("NaN", None), ("inf", None), ("-inf", None),
                                        ("3.5", 3.5), (2, 2.0), ("two", None), (0, 0.0), ([1], None)])
def test_cell_numbers(cell, value):
    assert _num(cell) == value


COLS = {"id": 0, "age": 1, "gender": 2, "cervical spondylotic myelopathy": 3,
        "vas score-neck(preoperative)": 4, "surgical approach": 5, "2c2-3": 6, "2c7-t1": 7,
        "vas score-neck(1 year postoperative)": 8}


def _parse(rows, cols=COLS):
    said = []
    return _parse_rows(cols, iter(rows), said.append), said


def test_codes_ranges_and_missing_cells():
    out, said = _parse([
        ["1", 0, 1, 1, 0, 1, 1, 1, 0],           # age 0 is an age; C2-3 and C7-T1 lesions
        ["2", 150, 3, 3, 10, 2.5, 0, 0, 0.5],    # age out of range, sex code 3, approach not whole
        ["3", -1, 2, 2, None, 4, "1", None, None],  # negative age, an unknown approach code
        ["4", 149.9, None, None, "NaN"],         # a short row: the missing cells are missing
        [None, 50, 1],                           # no ID: skipped
        [],                                      # an empty row: skipped
        ["5", 60, None, None, None, None, None, 1],  # C7-T1 is the last cell of the row
        ["1", 99, 2],                            # ID 1 again: the first row is kept
    ])
    assert out[1] == {"age": 0, "sex": "male", "myelopathy": "yes", "surgical_approach": "ACDF",
                      "lesion_levels": "C2-3, C7-T1", "vas_pre": 0.0, "vas_post_1y": 0.0, "outcome": 0}
    assert out[2] == {"sex": "3.0", "lesion_levels": "none", "vas_pre": 10.0, "vas_post_1y": 0.5, "outcome": 1}
    assert out[3]["sex"] == "female" and out[3]["myelopathy"] == "no" and "age" not in out[3]
    assert out[3]["surgical_approach"] == "code 4" and out[3]["lesion_levels"] == "C2-3"
    assert "vas_post_1y" not in out[3] and "outcome" not in out[3]
    assert out[4] == {"age": 149, "lesion_levels": "none"}
    assert out[5] == {"age": 60, "lesion_levels": "C7-T1"}
    out6, _ = _parse([["6", 61, None, None, None, None, 1]])  # a row ending before C7-T1's column
    assert out6[6] == {"age": 61, "lesion_levels": "C2-3"}
    assert sorted(out) == [1, 2, 3, 4, 5]
    assert said == ["patient 1 is on more than one row; the first row is used"]


def test_headers_found_by_their_words():
    cols = {"id": 0, "sex": 1, "vas neck postoperative": 2, "radiculopathy (csr)": 3}  # no "1 year"
    out, _ = _parse([["5", 2, 3, 1]], cols)
    assert out[5] == {"sex": "female", "vas_post_1y": 3.0, "outcome": 1, "radiculopathy": "yes"}
    assert "lesion_levels" not in out[5]  # no level columns: nothing said about lesions
    cols = {"id": 0, "vas (1 year)": 1, "vas postoperative 3 months": 2}
    out, _ = _parse([["6", 0, 4]], cols)
    assert out[6]["vas_post_1y"] == 0.0 and out[6]["outcome"] == 0  # the 1-year column wins


def _xlsx(path, sheets):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def test_the_sheet_with_ids_is_read_sheet1_first(tmp_path):
    f = _xlsx(tmp_path / "a.xlsx", [("Legend", [["Gender", "1 male"]]), ("data", [["ID", "Age"], ["7", 40]])])
    assert read_clinical(f) == {7: {"age": 40}}
    f = _xlsx(tmp_path / "b.xlsx", [("other", [["ID", "Age"], ["7", 40]]), ("SHEET1", [["id", "AGE"], ["7", 41]])])
    assert read_clinical(f) == {7: {"age": 41}}
    said = []
    f = _xlsx(tmp_path / "c.xlsx", [("Sheet1", [["ID"], ["8"], ["8"]])])
    read_clinical(f, said.append)
    assert said == [f"{f}: patient 8 is on more than one row; the first row is used"]
    f = _xlsx(tmp_path / "d.xlsx", [("Sheet1", [["Name", "Age"]]), ("Empty", [])])
    with pytest.raises(SpineIOError, match=r"d\.xlsx: no sheet has an 'ID' column \(looked in Sheet1, Empty\)"):
        read_clinical(f)
    (tmp_path / "e.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SpineIOError, match=r"e\.xlsx: cannot read the clinical spreadsheet"):
        read_clinical(tmp_path / "e.xlsx")


def _volume(root, seq, folder, value):
    d = root / "image" / seq / folder
    d.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full((4, 5, 3), value, np.int16), np.diag([0.5, 0.6, 3.0, 1])), str(d / "v.nii.gz"))


def test_cases_splits_and_sequences(tmp_path):
    root = tmp_path / "MMCSD"
    for seq, value in (("ct_bone", 1), ("t1_sag", 2), ("t2_tra", 3)):
        _volume(root, seq, "MMCSD_3", value)
    _volume(root, "ct_tissue", "4", 4)
    _volume(root, "t2_sag", "no_id_here", 5)  # a folder without an ID: not a case
    _xlsx(root / "text" / "high_pain_text.xlsx", [("Sheet1", [["ID", "Age"], ["003", 70]])])
    (root / "code").mkdir()
    (root / "code" / "train_id4.txt").write_text("3\n9\n")
    (root / "code" / "test_id4.txt").write_text("9\n\nnot an id\n")
    said = []
    refs = MMCSDAdapter().list_cases(root, warn=said.append)
    assert [r.case_id for r in refs] == ["3", "4"]
    r3, r4 = refs
    assert (r3.split, r4.split) == ("train", "unused") and r3.metadata == {"age": 70}
    assert r4.metadata == {"clinical": "no spreadsheet row"}
    assert any("patient 9 is listed in both" in m and "kept in train" in m for m in said)
    assert sorted(r3.images) == ["ct_bone", "t1_sag", "t2_tra"]
    ad = MMCSDAdapter()
    case = ad.load_case(r3)  # no T2 sagittal: T1 sagittal comes first
    assert int(np.asarray(case.image).max()) == 2 and case.modality == "MR-T1"
    assert ad.load_case(r3, "ct_bone").modality == "CT" and ad.load_case(r4).modality == "CT"
    with pytest.raises(SpineIOError, match=r"MMCSD patient 4: no t2_sag sequence \(has ct_tissue\)"):
        ad.load_case(r4, "t2_sag")
    only = ad.list_cases(root, within=root / "image" / "ct_tissue")
    assert [r.case_id for r in only] == ["4"]
    assert [r.case_id for r in ad.list_cases(root, within=root / "image")] == ["3", "4"]
    (root / "code" / "train_id4.txt").unlink()
    (root / "code" / "test_id4.txt").unlink()
    assert {r.split for r in ad.list_cases(root)} == {"unknown"}  # no split files at all


def test_detection_and_warnings(tmp_path):
    root = tmp_path / "MMCSD"
    _volume(root, "t2_sag", "12", 12)
    ad = MMCSDAdapter()
    for inside in (root, root / "image", root / "image" / "t2_sag", root / "image" / "t2_sag" / "12"):
        det = ad.detect(inside)
        assert det is not None and det.root == root and det.score == 0.95
        # from inside a sequence folder the sequence folder itself is the evidence
        seq = inside in (root / "image" / "t2_sag", root / "image" / "t2_sag" / "12")
        assert det.reason == ("image/<sequence>/ folder" if seq else "image/<sequence>/<ID>/ folders")
    assert ad.detect(tmp_path) is None
    (root / "image" / "notes").mkdir()  # a folder in image/ that is not a sequence: found from above
    det = ad.detect(root / "image" / "notes")
    assert det.root == root and det.reason == "image/<sequence>/<ID>/ folders"
    (tmp_path / "other" / "image").mkdir(parents=True)  # an image folder without sequence folders
    assert ad.detect(tmp_path / "other") is None
    deep = root / "image" / "t2_sag" / "12" / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    assert ad.detect(deep) is None  # detection looks four folders up, no further
    _volume(root, "t2_sag", "13/14/15", 15)  # three folders down: beyond the layout, not read
    assert ad.dataset_warnings(root) == [f"{root}: no clinical spreadsheet (text/high_pain_text.xlsx) found"]
    (root / "text").mkdir()
    (root / "text" / "high_pain_text.xlsx").write_bytes(b"junk")
    (w,) = ad.dataset_warnings(root)
    assert "high_pain_text.xlsx: cannot read the clinical spreadsheet" in w
    sheet_only = tmp_path / "clinic"
    _xlsx(sheet_only / "high_pain_text.xlsx", [("Sheet1", [["ID"], ["1"]])])
    det = ad.detect(sheet_only)
    assert det is not None and det.score == 0.7 and det.root == sheet_only
    assert open_dataset(root).kind == "mmcsd"
    assert [r.case_id for r in ad.list_cases(root)] == ["12"]
