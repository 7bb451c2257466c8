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
    # a folder case is named by its folder, a single-file case by its file without ".pt"
    assert ds.cases[0].case_id == ("Test/p7/p7" if layout == "dict" else "Test/p7")
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


def _ssm_dict(img, lab, texture: float):
    """One SSMSpine file as datasets.md 4.3 lists it: every key, in its published shape
    (at H x W instead of 512 x 512). Contours are (x, y) = (column, row) points on each
    structure's own band, so swapped axes put them on the wrong structure."""
    order = [1, 7, 2, 8, 3, 9, 4, 10, 5, 11, 6]
    rows = {v: 1 + 3 * k for k, v in enumerate(order)}  # first row of each band
    cols = {v: 10 + k for k, v in enumerate(order)}  # first column of each band

    def contour(v, n):  # n points along the band's top row, x = column, y = row
        xs = np.linspace(cols[v], cols[v] + 19, n)
        return np.c_[xs, np.full(n, rows[v])].astype(np.float32)

    masks = np.stack([(lab == v) for v in range(1, 12)]).astype(np.uint8)
    return {
        "img": torch.from_numpy(img), "img_corrected": torch.from_numpy(img * 0.5),
        "img_equalized": torch.from_numpy(img + texture),
        "label": torch.from_numpy(lab[None].astype(np.int64)),
        "mask": torch.from_numpy(masks),
        "shape": torch.zeros((24, 2)),
        "bone": torch.from_numpy(np.stack([contour(v, 7) for v in (1, 2, 3, 4, 5, 6)])),
        "bone_mask": torch.from_numpy(masks[:6]),
        "disk": torch.from_numpy(np.stack([contour(v, 5) for v in (7, 8, 9, 10, 11)])),
        "disk_mask": torch.from_numpy(masks[6:]),
    }


def _ssm_tree(root):
    img, lab = _slice_pattern()
    files = {}
    for split, patient, aug, texture in (("Train", "p1", "aug0", 0.0), ("Train", "p1", "aug1", 0.25),
                                         ("Vali", "p2", "aug0", 0.5), ("Test", "p9", "aug3", 0.75)):
        d = root / split / patient
        d.mkdir(parents=True, exist_ok=True)
        torch.save(_ssm_dict(img, lab, texture), d / f"{aug}.pt")
        files[(split, patient, aug)] = texture
    return img, lab, files


def test_ssmspine_every_key_from_the_readme(tmp_path):
    img, lab, files = _ssm_tree(tmp_path / "dataset")
    ds = open_dataset(tmp_path / "dataset")
    assert ds.kind == "ssmspine" and len(ds.cases) == 4
    assert sorted(c.split for c in ds.cases) == ["test", "train", "train", "validation"]
    by_texture = {c.metadata["patient_texture"] for c in ds.cases}
    assert by_texture == {"p1", "p2", "p9"}
    vali = next(c for c in ds.cases if c.split == "validation")
    case = ns.load_case(vali)
    _check(case, img, lab)
    # the three intensity variants are the file's own keys, not one image three times
    assert np.allclose(ns.load_case(vali, sequence="img_corrected").image[0], img * 0.5)
    assert np.allclose(ns.load_case(vali, sequence="img_equalized").image[0], img + 0.5)
    # contour points sit on their own structure: (x, y) read as (column, row)
    lm = case.landmarks
    assert lm is not None and len(lm.coords) == 6 * 7 + 5 * 5
    for (z, r, c), sid in zip(lm.coords, lm.structure_ids, strict=True):
        assert z == 0 and case.labels[0, int(r), int(c)] == sid
    first = lm.coords[lm.structure_ids == 20][0]  # L1's first point: column 10, row 1
    assert tuple(first) == (0.0, 1.0, 10.0)


@pytest.mark.parametrize("scheme", ["native", "canonical"])
def test_batch_export_of_a_spec_tree_gives_the_labels_computed_here(tmp_path, scheme):
    """The batch export's label files hold exactly the published labels: the file's own ids
    (native) or mapped to the canonical table worked out here from datasets.md 4.5, not
    another run of the same code."""
    import nibabel as nib

    from napari_spine import batch

    _, lab, files = _ssm_tree(tmp_path / "dataset")
    want = lab.copy()
    if scheme == "canonical":
        want = np.zeros_like(lab)
        for native, canonical in CANON.items():
            want[lab == native] = canonical
    res = batch.run("export", tmp_path / "dataset", tmp_path / "out", workers=0, scheme=scheme,
                    progress=lambda m: None)
    assert res.ok and len(res.rows) == len(files)
    for row in res.rows:
        out = tmp_path / "out" / "cases" / batch.unique_name(row["case_id"]) / "labels.nii.gz"
        data = np.asarray(nib.load(str(out)).dataobj)
        assert data.shape[:2] == (H, W) or data.shape[-2:] == (H, W), data.shape
        assert np.array_equal(np.squeeze(data), want), row["case_id"]


def _msca():
    from napari_spine.datasets.spine_msca import SpineMSCAAdapter

    return SpineMSCAAdapter()


@pytest.mark.parametrize("archives", [("Vail.zip",), ("Test.zip", "Vail.zip"),
                                      ("Train.zip.001", "Train.zip.002", "Train.zip.003")])
def test_spine_msca_repository_root_is_recognised_by_either_archive_set(tmp_path, archives):
    """The repository root holds the validation zip or the train parts (datasets.md 5.2);
    either one alone names the dataset."""
    for name in archives:
        (tmp_path / name).write_bytes(b"PK")
    found = _msca().detect(tmp_path)
    assert found is not None and found.kind == "spine_msca" and found.root == tmp_path
    assert _msca().detect(tmp_path / "elsewhere") is None


def test_spine_msca_detected_from_a_case_file_or_folder_and_within_three_levels(tmp_path):
    img, lab = _slice_pattern()
    root = tmp_path / "Spine-MSCA"
    case_dir = root / "Train" / "p4"
    case_dir.mkdir(parents=True)
    torch.save(torch.from_numpy(img), case_dir / "img.pt")
    torch.save(torch.from_numpy(lab[None].astype(np.int64)), case_dir / "label.pt")
    for start in (case_dir / "img.pt", case_dir / "label.pt", case_dir):
        found = _msca().detect(start)
        assert found is not None and found.kind == "spine_msca" and found.root == root, start
    assert _msca().detect(root).root == root  # case folders two levels below
    deep = tmp_path / "other" / "a" / "b" / "c"  # the case folder three levels below "a"
    (deep / "p1").mkdir(parents=True)
    for f in ("img.pt", "label.pt"):
        (deep / "p1" / f).write_bytes((case_dir / f).read_bytes())
    assert _msca().detect(tmp_path / "other" / "a") is not None
    assert _msca().detect(tmp_path / "other") is None  # four levels: the search stops before


def test_spine_msca_image_without_its_label_file_loads_unlabelled(tmp_path):
    img, _ = _slice_pattern()
    case_dir = tmp_path / "Spine-MSCA" / "Test" / "p2"
    case_dir.mkdir(parents=True)
    torch.save(torch.from_numpy(img), case_dir / "img.pt")
    refs = _msca().list_cases(tmp_path / "Spine-MSCA")
    assert [r.case_id for r in refs] == ["Test/p2"] and refs[0].labels is None
    case = ns.load_case(refs[0])
    assert case.labels is None and np.array_equal(case.image[0], img)


def test_spine_msca_cases_listed_inside_one_archive(tmp_path):
    """``within`` a zip: its .pt members are the cases, read without unpacking."""
    import io
    import zipfile

    img, lab = _slice_pattern()
    buf = io.BytesIO()
    torch.save({"img": torch.from_numpy(img), "label": torch.from_numpy(lab[None].astype(np.int64))}, buf)
    with zipfile.ZipFile(tmp_path / "Vail.zip", "w") as z:
        z.writestr("Vail/p11.pt", buf.getvalue())
        z.writestr("Vail/p12.pt", buf.getvalue())
    refs = _msca().list_cases(tmp_path, within=tmp_path / "Vail.zip")
    assert [r.case_id for r in refs] == ["Vail/p11", "Vail/p12"]
    assert {r.split for r in refs} == {"validation"}
    _check(ns.load_case(refs[1]), img, lab)
