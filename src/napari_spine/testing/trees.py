"""Writers of synthetic dataset trees that reproduce each dataset's layout exactly.

For tests and demos: file and folder names, split files (CRLF where the original has
it), the MMCSD spreadsheet with its real headers, the MIDRC TSVs, ``.pt`` dicts holding
numpy arrays or tensors, and byte-split zips. Images are small phantoms
(:func:`napari_spine.make_phantom`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..anatomy.labelmaps import get_label_map
from ..synthetic import make_phantom, write_phantom

__all__ = ["write_cspineseg", "write_ctspine1k", "write_mmcsd", "write_spine_msca", "write_ssmspine"]


def _native(canonical: np.ndarray, scheme: str) -> np.ndarray:
    """Canonical phantom labels in a dataset's native ids (structures it lacks dropped)."""
    lm = get_label_map(scheme)
    kept = np.where(np.isin(canonical, list(lm.from_canonical)), canonical, 0).astype(np.uint8)
    return lm.from_canonical_array(kept)


# -- CTSpine1K -------------------------------------------------------------------------
CTSPINE1K_NAMES = {
    "COLONOG": ["1.3.6.1.4.1.9328.50.4.0001", "1.3.6.1.4.1.9328.50.4.0477", "CTC-3105759107"],
    "MSD-T10": ["liver_0", "liver_83", "liver_106"],
    "COVID-19": ["volume-covid19-A-0377_ct", "volume-covid19-A-0202_0_ct"],
    "HNSCC-3DCT-RT": ["HN_P001", "HN_P023"],
}


def write_ctspine1k(root: str | Path, layout: str = "hf", names: dict[str, list[str]] | None = None,
                    shape: Sequence[int] = (20, 40, 28), split_file: bool = True) -> Path:
    """CTSpine1K tree: ``layout`` = ``"hf"`` (raw_data/volumes|labels), ``"drive"`` (data/label)
    or ``"flat"`` (X.nii.gz + X_seg.nii.gz in ``train/`` and ``test/``)."""
    root = Path(root)
    names = names or CTSPINE1K_NAMES
    all_names = [(g, n) for g, ns in names.items() for n in ns]
    sections = {"trainset:": [], "test_public:": [], "test_private:": []}
    for i, (group, name) in enumerate(all_names):
        section = list(sections)[i % 3]
        sections[section].append(f"{name}.nii.gz")
        if layout == "hf":
            img, lab = root / "raw_data" / "volumes" / group, root / "raw_data" / "labels" / group
        elif layout == "drive":
            img, lab = root / "data" / group, root / "label" / group
        else:
            img = lab = root / ("train" if section == "trainset:" else "test")
        img.mkdir(parents=True, exist_ok=True)
        lab.mkdir(parents=True, exist_ok=True)
        case = make_phantom(shape, (1.0, 1.2, 1.0), levels=("T12", "L5"), axcodes="LPS", seed=i,
                            include_canal=False)
        case = case.with_labels(_native(case.labels, "ctspine1k"))  # vertebrae only, no discs
        write_phantom(case, img / f"{name}.nii.gz", lab / f"{name}_seg.nii.gz")
    if split_file:
        (root / "metadata").mkdir(parents=True, exist_ok=True) if layout == "hf" else None
        target = root / "metadata" / "data_split.txt" if layout == "hf" else root / "data_split.txt"
        blocks = ["\r\n".join([head, *items]) for head, items in sections.items()]
        target.write_bytes(("\r\n\r\n".join(blocks) + "\r\n").encode())
    return root


# -- CSpineSeg -------------------------------------------------------------------------
def write_cspineseg(root: str | Path, n: int = 4, layout: str = "midrc", without_mask: int = 1,
                    shape: Sequence[int] = (8, 48, 40)) -> Path:
    """CSpineSeg tree: ``"midrc"`` (annotation/, segmentation/, structured/*.tsv) or ``"nnunet"``."""
    root = Path(root)
    rows_case, rows_series, rows_study, rows_ann = [], [], [], []
    for i in range(n):
        stem = f"593973-{i + 1:06d}_Study-MR-{900 + i}_Series-3"
        case = make_phantom(shape, (3.5, 0.6, 0.6), levels=("C2", "C7"), modality="MR-T2",
                            axcodes="ASL", seed=i, include_canal=False)
        case = case.with_labels(_native(case.labels, "cspineseg"))
        has_mask = i < n - without_mask
        if layout == "midrc":
            (root / "annotation").mkdir(parents=True, exist_ok=True)
            (root / "segmentation").mkdir(parents=True, exist_ok=True)
            write_phantom(case, root / "annotation" / f"{stem}.nii.gz",
                          root / "segmentation" / f"{stem}_SEG.nii.gz" if has_mask else None)
        else:
            split, idx = ("Tr", i) if i < n - 1 else ("Ts", 0)
            (root / f"images{split}").mkdir(parents=True, exist_ok=True)
            (root / f"labels{split}").mkdir(parents=True, exist_ok=True)
            write_phantom(case, root / f"images{split}" / f"cspine_{idx}_0000.nii.gz",
                          root / f"labels{split}" / f"cspine_{idx}.nii.gz" if has_mask else None)
        patient, study, series = stem.split("_")[0], f"1.2.840.{i}.1", f"1.2.840.{i}.1.3"
        rows_case.append({"type": "case", "submitter_id": patient, "age_at_index": str(40 + i),
                          "sex": "Female" if i % 2 else "Male", "site_id": "593973"})
        rows_study.append({"type": "imaging_study", "submitter_id": study, "case_ids": patient,
                           "study_description": "MR CERVICAL SPINE WO CONTRAST"})
        rows_series.append({"imaging_studies.submitter_id": study, "submitter_id": series,
                            "manufacturer": "GE MEDICAL SYSTEMS" if i % 2 else "SIEMENS",
                            "magnetic_field_strength": "1.5" if i % 2 else "3",
                            "slice_thickness": "3", "pixel_spacing": "0.6",
                            "series_description": "SAG T2"})
        rows_ann.append({"file_name": f"{stem}.nii.gz", "mr_series_files.submitter_id": series})
        if has_mask:
            rows_ann.append({"file_name": f"{stem}_SEG.nii.gz", "mr_series_files.submitter_id": series})
    if layout == "midrc":
        s = root / "structured"
        s.mkdir(parents=True, exist_ok=True)
        for name, rows in (("case", rows_case), ("imaging_study", rows_study),
                           ("mr_series", rows_series), ("annotation_file", rows_ann)):
            _write_tsv(s / f"{name}_RSNA_20250321.tsv", rows)
        _write_tsv(s / "clinical_manifest_RSNA_20250321.tsv", [{"file_name": "case_RSNA_20250321.tsv"}])
        _write_tsv(s / "image_manifest_RSNA_20250321.tsv", [{"file_name": "slice_1.dcm"}])
    else:
        import json

        (root / "dataset.json").write_text(json.dumps({
            "channel_names": {"0": "T2"},
            "labels": {"background": 0, "vertebrae": 1, "inter-vetebral disc": 2},
            "numTraining": n - 1, "file_ending": ".nii.gz", "name": "CSpineSeg"}, indent=1))
    return root


def _write_tsv(path: Path, rows: list[dict[str, str]]) -> None:
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    lines = ["\t".join(cols)] + ["\t".join(r.get(c, "") for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n")


# -- MMCSD -----------------------------------------------------------------------------
MMCSD_HEADERS = (
    "ID", "Age", "Gender", "Cervical spondylotic myelopathy", "Cervical spondylotic radiculopathy",
    "VAS score-neck(Preoperative)", "Surgical approach", "2C2-3", "2C3-4", "2C4-5", "2C5-6",
    "2C6-7", "2C7-1", "VAS score-neck（1 year postoperative）",
)


def write_mmcsd(root: str | Path, ids: Sequence[int] = (1, 2, 3, 5),
                sequences: Sequence[str] = ("ct_bone", "t1_sag", "t2_sag", "t2_tra"),
                variant: str = "github", train: Sequence[int] = (1, 2), test: Sequence[int] = (3,),
                shape: Sequence[int] = (16, 40, 32)) -> Path:
    """MMCSD tree. ``variant="github"``: sheet ``sheet1``, text IDs ``"001"``, ``2C7-1``;
    ``"synapse"``: sheet ``Sheet1``, numeric IDs, ``2C7-T1`` and a PHI-like ``ID*`` column."""
    import openpyxl

    root = Path(root)
    for pid in ids:
        for k, seq in enumerate(sequences):
            folder = root / "image" / seq / str(pid)
            folder.mkdir(parents=True, exist_ok=True)
            modality = "CT" if seq.startswith("ct") else ("MR-T1" if seq == "t1_sag" else "MR-T2")
            axcodes = "LPS" if seq in ("ct_bone", "ct_tissue", "t2_tra") else "PIR"
            case = make_phantom(shape, (1.0, 1.0, 1.0), levels=("C3", "C7"), modality=modality,
                                axcodes=axcodes, seed=pid * 10 + k)
            write_phantom(case, folder / f"{pid}.nii.gz")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "sheet1" if variant == "github" else "Sheet1"
    headers = list(MMCSD_HEADERS)
    if variant == "synapse":
        headers[headers.index("2C7-1")] = "2C7-T1"
        headers.insert(1, "ID*")
    ws.append(headers)
    rng = np.random.default_rng(0)
    for pid in sorted(set(ids) | {4}):
        row = [f"{pid:03d}" if variant == "github" else pid, 40 + pid, 1 + pid % 2, 1, 2,
               3 + pid % 5, 1 + pid % 3, *[int(v) for v in rng.integers(0, 2, 6)], pid % 3]
        if variant == "synapse":
            row.insert(1, f"H{pid:07d}")
        ws.append(row)
    legend = wb.create_sheet("Sheet2")
    legend.append(["Gender", "1 male, 2 female"])
    (root / "text").mkdir(parents=True, exist_ok=True)
    wb.save(root / "text" / "high_pain_text.xlsx")
    (root / "code").mkdir(parents=True, exist_ok=True)
    (root / "code" / "train_id4.txt").write_text("".join(f"{i}\n" for i in train))
    (root / "code" / "test_id4.txt").write_text("".join(f"{i}\n" for i in test))
    return root


# -- 2-D lumbar .pt datasets -------------------------------------------------------------
def lumbar_slice(seed: int = 0, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A mid-sagittal lumbar T2 slice (float32 in [0, 1]) and canonical labels (L1-S1)."""
    case = make_phantom((8, size, size), (4.0, 200.0 / size, 200.0 / size), levels=("L1", "S1"),
                        modality="MR-T2", axcodes="LIP", seed=seed, include_canal=False)
    img = case.image[4].astype(np.float32)
    img = (img - img.min()) / max(float(np.ptp(img)), 1.0)
    return img, np.ascontiguousarray(case.labels[4])


def _contour(mask: np.ndarray, n: int) -> np.ndarray:
    """``n`` (x, y) points around a mask's boundary, ordered by angle (a closed outline)."""
    from scipy import ndimage

    edge = mask & ~ndimage.binary_erosion(mask)
    rc = np.argwhere(edge).astype(float)
    if len(rc) == 0:
        return np.zeros((n, 2), np.float32)
    c = rc.mean(axis=0)
    order = np.argsort(np.arctan2(rc[:, 0] - c[0], rc[:, 1] - c[1]))
    rc = rc[order]
    pick = rc[np.linspace(0, len(rc) - 1, n).round().astype(int)]
    return np.c_[pick[:, 1], pick[:, 0]].astype(np.float32)  # (x, y) = (column, row)


def ssmspine_dict(seed: int = 0, size: int = 96, tensors: bool = False) -> dict:
    """One SSMSpine ``.pt`` dict as the dataset documents it (``img``, variants, ``label``,
    ``bone``, ``disk``)."""
    img, canon = lumbar_slice(seed, size)
    native = _native(canon, "ssmspine")
    masks = np.stack([(native == k) for k in range(1, 12)]).astype(np.uint8)
    d = {
        "img": img, "img_corrected": np.sqrt(img), "img_equalized": img ** 0.7,
        "label": native[None].astype(np.uint8), "mask": masks,
        "bone": np.stack([_contour(masks[k].astype(bool), 236) for k in range(6)]),
        "bone_mask": masks[:6], "disk": np.stack([_contour(masks[k].astype(bool), 176) for k in range(6, 11)]),
        "disk_mask": masks[6:],
    }
    d["shape"] = np.concatenate([d["bone"].reshape(-1, 2), d["disk"].reshape(-1, 2)])[:1696]
    if tensors:
        import torch

        d = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in d.items()}
    return d


def write_ssmspine(root: str | Path, patients: Sequence[int] = (1, 2), shapes: int = 2,
                   splits: Sequence[str] = ("Train", "Test"), tensors: bool = False, size: int = 96) -> Path:
    """``dataset/<Split>/p<k>/aug<j>.pt`` dicts (numpy arrays, or tensors)."""
    import torch

    root = Path(root)
    for split in splits:
        for k in patients:
            folder = root / split / f"p{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for j in range(shapes):
                torch.save(ssmspine_dict(seed=k * 100 + j, size=size, tensors=tensors), folder / f"aug{j}.pt")
    return root


def write_spine_msca(root: str | Path, layout: str = "folders", archives: bool = True,
                     per_split: int = 2, parts: int = 3, size: int = 96, tensors: bool = True) -> Path:
    """Spine-MSCA: ``Train/``, ``Vail/``, ``Test/`` with ``<case>/img.pt`` + ``label.pt``
    (``layout="folders"``) or ``<case>.pt`` dicts; with ``archives=True`` as ``Train.zip.001-00N``
    (one zip split in byte parts), ``Vail.zip`` and ``Test.zip``."""
    import torch

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for s_i, split in enumerate(("Train", "Vail", "Test")):
        files: dict[str, bytes] = {}
        for c in range(per_split):
            img, canon = lumbar_slice(seed=s_i * 50 + c, size=size)
            native = _native(canon, "spine_msca")[None]
            to = (lambda a: torch.from_numpy(np.ascontiguousarray(a))) if tensors else (lambda a: a)
            if layout == "folders":
                files[f"{split}/p{c}/img.pt"] = _pt_bytes(to(img))
                files[f"{split}/p{c}/label.pt"] = _pt_bytes(to(native))
            else:
                files[f"{split}/case{c}.pt"] = _pt_bytes({"img": to(img), "label": to(native)})
        if archives:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for name, data in files.items():
                    z.writestr(name, data)
            blob = buf.getvalue()
            if split == "Train" and parts > 1:
                cuts = np.linspace(0, len(blob), parts + 1).astype(int)
                for i in range(parts):
                    (root / f"Train.zip.{i + 1:03d}").write_bytes(blob[cuts[i] : cuts[i + 1]])
            else:
                (root / f"{split}.zip").write_bytes(blob)
        else:
            for name, data in files.items():
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
    return root


def _pt_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
