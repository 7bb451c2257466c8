"""Dataset trees as they arrive broken or odd: each problem is handled and reported.

The fixtures are written by hand from the datasets' documented layouts (docs/datasets.md),
with nibabel and openpyxl, not with napari-spine's writers.
"""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_spine import ExportError, export_labels, load_case, open_dataset


def _nii(path: Path, data: np.ndarray, affine=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 1.0, 1.0]) if affine is None else affine), str(path))
    return path


def _vol(seed: int, dtype=np.int16) -> np.ndarray:
    return np.random.default_rng(seed).integers(-900, 900, (12, 14, 10)).astype(dtype)


def _mask(levels: tuple[int, ...]) -> np.ndarray:
    m = np.zeros((12, 14, 10), np.uint8)
    for k, lev in enumerate(levels):
        m[2:10, 1 + 3 * k: 3 + 3 * k, 2:8] = lev
    return m


# -- 5. CTSpine1K: the same stem in two groups -------------------------------------------------
def test_ctspine1k_never_pairs_across_groups(tmp_path):
    vol = tmp_path / "raw_data" / "volumes"
    lab = tmp_path / "raw_data" / "labels"
    _nii(vol / "COLONOG" / "CTC-1.nii.gz", _vol(1))
    _nii(lab / "MSD-T10" / "CTC-1_seg.nii.gz", _mask((20, 21)))  # another group's mask
    _nii(vol / "HNSCC-3DCT-RT" / "CTC-2.nii.gz", _vol(2))
    _nii(vol / "MSD-T10" / "CTC-2.nii.gz", _vol(3))
    _nii(lab / "MSD-T10" / "CTC-2_seg.nii.gz", _mask((22, 23)))
    ds = open_dataset(tmp_path)
    by_id = {c.case_id: c for c in ds.cases}
    assert set(by_id) == {"CTC-1", "HNSCC-3DCT-RT/CTC-2", "MSD-T10/CTC-2"}  # one id each
    assert by_id["CTC-1"].labels is None
    assert by_id["HNSCC-3DCT-RT/CTC-2"].labels is None
    assert by_id["MSD-T10/CTC-2"].labels.endswith(str(Path("MSD-T10") / "CTC-2_seg.nii.gz"))
    assert any("CTC-1_seg.nii.gz: a mask without its image" in w for w in ds.warnings)
    assert any("case CTC-2 appears in 2 groups" in w for w in ds.warnings)
    case = ds.load_case("MSD-T10/CTC-2")
    assert set(np.unique(case.labels)) == {0, 22, 23}


# -- 6. MMCSD: numbers that are not numbers ----------------------------------------------------
def _mmcsd(root: Path, rows, train=("1",), test=("2",)) -> Path:
    import openpyxl

    for pid in {int(r[0]) for r in rows}:
        _nii(root / "image" / "t2_sag" / f"p_{pid}" / "t2.nii.gz", _vol(pid, np.uint16))
    (root / "text").mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ID", "Age", "Gender", "VAS (preoperative)", "VAS (1 year postoperative)"])
    for r in rows:
        ws.append(list(r))
    wb.save(root / "text" / "high_pain_text.xlsx")
    (root / "code").mkdir(exist_ok=True)
    (root / "code" / "train_id4.txt").write_text("\n".join(train) + "\n")
    (root / "code" / "test_id4.txt").write_text("\n".join(test) + "\n")
    return root


def test_mmcsd_nan_and_infinite_cells_are_missing_values(tmp_path):
    root = _mmcsd(tmp_path, [("001", "inf", 1, 5, "NaN"), ("002", float("nan"), 2, "nan", 4),
                             ("003", 200, 1, 3, 0)])
    ds = open_dataset(root)
    meta = {c.case_id: dict(c.metadata) for c in ds.cases}
    assert "outcome" not in meta["1"] and "vas_post_1y" not in meta["1"] and "age" not in meta["1"]
    assert meta["2"]["outcome"] == 1 and "age" not in meta["2"] and "vas_pre" not in meta["2"]
    assert meta["3"]["outcome"] == 0 and "age" not in meta["3"]  # 200 years is no age
    case = ds.load_case("1")  # loads, and the case carries no made-up outcome
    assert "outcome" not in case.metadata and sorted(case.image.shape) == [10, 12, 14]


def test_mmcsd_duplicates_and_split_conflicts_are_warnings(tmp_path):
    root = _mmcsd(tmp_path, [("001", 50, 1, 5, 0), ("001", 70, 2, 9, 9), ("002", 60, 1, 4, 2)],
                  train=("1", "2"), test=("2",))
    ds = open_dataset(root)
    meta = {c.case_id: dict(c.metadata) for c in ds.cases}
    assert meta["1"]["age"] == 50  # the first row
    assert any("patient 1 is on more than one row" in w for w in ds.warnings)
    assert any("patient 2 is listed in both" in w and "train_id4.txt" in w and "test_id4.txt" in w
               for w in ds.warnings)
    assert {c.case_id: c.split for c in ds.cases}["2"] == "train"


# -- 9. paths containing '::' ------------------------------------------------------------------
def test_a_folder_named_with_double_colons_is_a_plain_path(tmp_path):
    folder = tmp_path / "with::sep"
    img = _nii(folder / "CTC-7.nii.gz", _vol(7))
    seg = _nii(folder / "CTC-7_seg.nii.gz", _mask((20, 21, 22)))
    ds = open_dataset(folder)
    assert [c.case_id for c in ds.cases] == ["CTC-7"]
    case = ds.load_case("CTC-7")
    assert set(np.unique(case.labels)) == {0, 20, 21, 22}
    before = seg.read_bytes()
    with pytest.raises(ExportError, match="the dataset's original file"):
        export_labels(case, None, seg)  # overwrite protection holds below '::' too
    assert seg.read_bytes() == before
    assert load_case(img, seg).labels.max() == 22


# -- 10. missing archive parts, TSV duplicates and quotes --------------------------------------
def test_a_missing_first_part_of_a_split_archive_is_reported(tmp_path):
    torch = pytest.importorskip("torch")
    import io

    def member(obj) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    label = torch.zeros((1, 8, 8), dtype=torch.uint8)
    label[0, 2:4, 2:6] = 1
    root = tmp_path / "spine_msca"
    root.mkdir()
    for archive, inner in (("Test.zip", "Test"), ("Vail.zip", "Vail")):  # README: "img.pt and label.pt"
        with zipfile.ZipFile(root / archive, "w") as zf:
            zf.writestr(f"{inner}/1/img.pt", member(torch.rand((8, 8))))
            zf.writestr(f"{inner}/1/label.pt", member(label))
    data = bytes(range(256)) * 40
    (root / "Train.zip.002").write_bytes(data)  # Train.zip.001 never arrived
    (root / "Train.zip.003").write_bytes(data)
    ds = open_dataset(root)
    assert {c.split for c in ds.cases} == {"test", "validation"}
    assert any("Train.zip.001: missing" in w and "Train.zip.002" in w for w in ds.warnings)


def _cspineseg(root: Path, annotation_rows: str) -> Path:
    stem = "123456-654321_Study-MR-1_Series-2"
    _nii(root / "annotation" / f"{stem}.nii.gz", _vol(1))
    _nii(root / "segmentation" / f"{stem}_SEG.nii.gz", _mask((1, 2)))
    s = root / "structured"
    s.mkdir()
    (s / "annotation_file_RSNA_20250321.tsv").write_text(
        "file_name\tmr_series_files.submitter_id\n" + annotation_rows.format(stem=stem))
    (s / "mr_series_RSNA_20250321.tsv").write_text(
        "submitter_id\timaging_studies.submitter_id\tmanufacturer\n1.2.3\t9.9\tACME\n"
        "1.2.4\t9.9\tOTHER\n")
    (s / "imaging_study_RSNA_20250321.tsv").write_text("submitter_id\tcase_ids\n9.9\t123456\n")
    (s / "case_RSNA_20250321.tsv").write_text("submitter_id\tage_at_index\tsex\n123456\t50\tFemale\n")
    return root


def test_tsv_duplicates_warn_and_a_stray_quote_swallows_nothing(tmp_path):
    ds = open_dataset(_cspineseg(tmp_path / "a", '"{stem}.nii.gz\t1.2.3\nother.nii.gz\t1.2.4\n'
                                                  '{stem}.nii.gz\t1.2.4\n'))
    (case,) = ds.cases
    assert not any("duplicate" in w for w in ds.warnings)  # the quoted name is another name
    assert case.metadata["patient_id"] == "123456"
    ds = open_dataset(_cspineseg(tmp_path / "b", '{stem}.nii.gz\t1.2.3\n{stem}.nii.gz\t1.2.4\n'))
    (case,) = ds.cases
    assert case.metadata["manufacturer"] == "ACME"  # the first row
    assert any("1 duplicate file_name value(s)" in w for w in ds.warnings)


# -- exports: reproducible bytes, no leftovers -------------------------------------------------
def test_export_bytes_are_reproducible_and_name_the_final_file(tmp_path):
    img = _nii(tmp_path / "CTC-3.nii.gz", _vol(3))
    seg = _nii(tmp_path / "CTC-3_seg.nii.gz", _mask((20, 21)))
    case = load_case(img, seg, label_scheme="ctspine1k")
    a = export_labels(case, None, tmp_path / "x.nii.gz").path
    first = a.read_bytes()
    b = export_labels(case, None, a).path  # the same export again, later
    assert b.read_bytes() == first
    header = first[:64]
    assert header[4:8] == b"\0\0\0\0"  # MTIME: none
    assert b"x.nii\0" in header and b".part" not in header  # FNAME: the final name
    assert gzip.decompress(first)  # and a valid gzip stream


def test_temporary_files_of_a_killed_export_are_removed(tmp_path):
    import subprocess
    import sys

    img = _nii(tmp_path / "CTC-4.nii.gz", _vol(4))
    case = load_case(img, _nii(tmp_path / "CTC-4_seg.nii.gz", _mask((20,))), label_scheme="ctspine1k")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = tmp_path / f".labels.part-{int(dead.stdout)}-0123abcd.nii.gz"
    stale.write_bytes(b"\0" * 1000)  # what a kill -9 in the middle of a write leaves
    alive = tmp_path / f".other.part-{os.getppid()}-0123abcd.nii.gz"  # a running writer's file
    alive.write_bytes(b"\0" * 10)
    unrelated = tmp_path / ".notes.part"
    unrelated.write_text("mine")
    export_labels(case, None, tmp_path / "labels.nii.gz")
    assert not stale.exists() and alive.exists() and unrelated.exists()


def test_a_full_disk_while_writing_landmarks_names_the_file(tmp_path, monkeypatch):
    import builtins
    import errno

    from napari_spine import Landmarks, export_landmarks

    img = _nii(tmp_path / "CTC-5.nii.gz", _vol(5))
    case = load_case(img)
    lm = Landmarks(np.array([[1.0, 2.0, 3.0]]), np.array([20]), ("L1",))
    target = tmp_path / "lm.json"
    target.write_text("previous")
    real_open = builtins.open

    def full_disk(file, mode="r", *args, **kwargs):
        if ".part-" in str(file) and "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", full_disk)
    with pytest.raises(ExportError, match=r"lm\.json: not written \(No space left on device\)"):
        export_landmarks(case, target, lm)
    monkeypatch.undo()
    assert target.read_text() == "previous" and not list(tmp_path.glob(".lm.part-*"))


def test_a_member_stored_twice_in_an_archive_is_one_case_and_a_warning(tmp_path):
    torch = pytest.importorskip("torch")
    import io
    import warnings

    def member(seed):
        buf = io.BytesIO()
        rng = np.random.default_rng(seed)
        label = np.zeros((1, 16, 16), np.uint8)
        label[0, 2:5, 3:12] = 1
        torch.save({"img": rng.random((16, 16), dtype=np.float32), "label": label,
                    "bone": rng.random((6, 8, 2)).astype(np.float32) * 15,
                    "disk": rng.random((5, 8, 2)).astype(np.float32) * 15}, buf)
        return buf.getvalue()

    root = tmp_path / "dataset"
    root.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        with zipfile.ZipFile(root / "SSMSpine_Train.zip", "w") as zf:
            zf.writestr("Train/p1/aug0.pt", member(1))
            zf.writestr("Train/p1/aug0.pt", member(2))
            zf.writestr("Train/p1/aug1.pt", member(3))
    ds = open_dataset(root)
    assert len(ds.cases) == 2 and len({c.case_id for c in ds.cases}) == 2
    assert any("1 member name(s) stored twice (Train/p1/aug0.pt)" in w for w in ds.warnings)
