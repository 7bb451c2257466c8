"""Dataset adapters against fixtures written here from the published layouts
(../shared/docs/datasets.md), never with the project's own writers: asymmetric patterns
that a transpose, a flip or a wrong label table changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_spine as ns
from napari_spine.datasets import open_dataset

H, W = 40, 56  # not square: a transpose changes the shape


def _slice_pattern():
    """An image that differs under any flip or transpose, and labels 1-11 (L1-L5, S1,
    D1-D5) stacked top to bottom (row 0 superior), each a band offset to the right."""
    img = np.zeros((H, W), np.float32)
    img += np.arange(H)[:, None] * 0.01 + np.arange(W)[None, :] * 0.001
    img[2:5, 3:9] = 1.0  # a marker near the top-left corner
    lab = np.zeros((H, W), np.uint8)
    order = [1, 7, 2, 8, 3, 9, 4, 10, 5, 11, 6]  # L1, D1, L2, D2 ... L5, D5, S1 (datasets.md 5.5)
    for k, v in enumerate(order):
        lab[1 + 3 * k : 3 + 3 * k, 10 + k : 30 + k] = v
    return img, lab


CANON = {1: 20, 2: 21, 3: 22, 4: 23, 5: 24, 6: 26, 7: 120, 8: 121, 9: 122, 10: 123, 11: 124}


def _check(case, img, lab):
    assert case.image.shape == (1, H, W) and case.labels.shape == (1, H, W)
    assert np.array_equal(case.image[0], img)  # row 0 superior, no transpose, no flip
    want = np.zeros_like(lab)
    for native, canonical in CANON.items():
        want[lab == native] = canonical
    assert np.array_equal(case.labels[0], want)
    column = [int(v) for v in case.labels[0][:, 20] if v]
    down = [v for i, v in enumerate(column) if i == 0 or v != column[i - 1]]
    assert down == [20, 120, 21, 121, 22, 122, 23, 123, 24, 124, 26]  # L1 ... S1 from row 0 down


@pytest.mark.parametrize("layout", ["dict", "folder"])
def test_spine_msca_both_layouts_from_the_readme(tmp_path, layout):
    img, lab = _slice_pattern()
    root = tmp_path / "Spine-MSCA" / "Test"
    case_dir = root / "p7"
    case_dir.mkdir(parents=True)
    if layout == "dict":  # (b): one .pt per case, {'img': (H, W), 'label': (1, H, W)} as Spine-DCAN loads it
        torch.save({"img": torch.from_numpy(img), "label": torch.from_numpy(lab[None].astype(np.int64))},
                   case_dir / "p7.pt")
    else:  # (a): a folder with img.pt (H, W) and label.pt (1, H, W)
        torch.save(torch.from_numpy(img), case_dir / "img.pt")
        torch.save(torch.from_numpy(lab[None].astype(np.int64)), case_dir / "label.pt")
    ds = open_dataset(tmp_path / "Spine-MSCA")
    assert ds.kind == "spine_msca" and len(ds.cases) == 1
    _check(ns.load_case(ds.cases[0]), img, lab)


# MMCSD high_pain_text.xlsx (datasets.md 1.5): every column, by its exact published header
MMCSD_HEADERS = ["ID", "Age", "Gender", "Cervical spondylotic myelopathy", "Cervical spondylotic radiculopathy",
                 "VAS score-neck(Preoperative)", "Surgical approach", "2C2-3", "2C3-4", "2C4-5", "2C5-6", "2C6-7",
                 "2C7-1", "VAS score-neck（1 year postoperative）"]
MMCSD_ROWS = [["002", 53, 1, 1, 2, 7, 2, 0, 1, 1, 0, 0, 1, 0],
              ["017", 61, 2, 2, 1, 4, 3, 1, 0, 0, 0, 1, 0, 5],
              ["120", 45, 1, 2, 2, 3, 1, 0, 0, 0, 0, 0, 0, 2]]
MMCSD_WANT = {
    2: {"age": 53, "sex": "male", "myelopathy": "yes", "radiculopathy": "no", "vas_pre": 7.0,
        "surgical_approach": "ACCF", "lesion_levels": "C3-4, C4-5, C7-T1", "vas_post_1y": 0.0, "outcome": 0},
    17: {"age": 61, "sex": "female", "myelopathy": "no", "radiculopathy": "yes", "vas_pre": 4.0,
         "surgical_approach": "ACDF/ACCF hybrid", "lesion_levels": "C2-3, C6-7", "vas_post_1y": 5.0, "outcome": 1},
    120: {"age": 45, "sex": "male", "myelopathy": "no", "radiculopathy": "no", "vas_pre": 3.0,
          "surgical_approach": "ACDF", "lesion_levels": "none", "vas_post_1y": 2.0, "outcome": 1},
}


def _mmcsd_tree(root, *, shuffle: bool, sheet: str, c7t1: str, phi: bool):
    import nibabel as nib
    import openpyxl

    headers = [c7t1 if h == "2C7-1" else h for h in MMCSD_HEADERS]
    rows = [list(r) for r in MMCSD_ROWS]
    if phi:  # the first version's hospital ID column: never shown
        headers.insert(1, "ID*")
        for r in rows:
            r.insert(1, "H0012345")
    if shuffle:  # never rely on column positions
        order = list(reversed(range(len(headers))))
        headers = [headers[i] for i in order]
        rows = [[r[i] for i in order] for r in rows]
    (root / "text").mkdir(parents=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(headers)
    for r in rows:
        ws.append(r)
    legend = wb.create_sheet("Sheet2")
    legend.append(["Gender", "1 male, 2 female"])
    wb.save(root / "text" / "high_pain_text.xlsx")
    (root / "code").mkdir()
    (root / "code" / "train_id4.txt").write_text("17\n120\n")
    (root / "code" / "test_id4.txt").write_text("2\n")
    for pid in (2, 17, 120):  # image/<seq>/<ID>/<ID>.nii.gz, unpadded IDs (datasets.md 1.2)
        d = root / "image" / "t2_sag" / str(pid)
        d.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.full((6, 8, 4), pid, np.int16), np.diag([0.5, 0.5, 3.0, 1])),
                 str(d / f"{pid}.nii.gz"))


@pytest.mark.parametrize("shuffle,sheet,c7t1,phi", [(False, "sheet1", "2C7-1", False),
                                                   (True, "Sheet1", "2C7-T1", True)])
def test_mmcsd_every_clinical_column_from_the_published_sheet(tmp_path, shuffle, sheet, c7t1, phi):
    _mmcsd_tree(tmp_path / "MMCSD", shuffle=shuffle, sheet=sheet, c7t1=c7t1, phi=phi)
    ds = open_dataset(tmp_path / "MMCSD")
    assert ds.kind == "mmcsd"
    by_id = {int(c.case_id): c for c in ds.cases}
    assert sorted(by_id) == [2, 17, 120]
    for pid, want in MMCSD_WANT.items():
        meta = by_id[pid].metadata
        for key, value in want.items():
            assert meta.get(key) == value, (pid, key, meta.get(key))
        assert "H0012345" not in str(meta)  # the hospital ID is never carried
    assert by_id[2].split == "test" and by_id[17].split == "train"
    case = ns.load_case(by_id[17])
    assert int(np.asarray(case.image).max()) == 17  # patient 17's own image
