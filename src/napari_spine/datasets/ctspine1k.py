"""CTSpine1K: 1,005 CT volumes, vertebra labels 1-25 (C1 ... L5, L6).

Layouts accepted (datasets.md 3.2): the Hugging Face ``raw_data/volumes/<group>/X.nii.gz`` +
``raw_data/labels/<group>/X_seg.nii.gz``; the Google Drive ``data/<group>/`` + ``label/<group>/``;
flat folders with ``X.nii.gz`` + ``X_seg.nii.gz``. ``data_split.txt`` (CRLF, sections
``trainset:``, ``test_public:``, ``test_private:``) gives the split.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..case import SpineCase
from ..io.nifti import load_case as load_nifti_case
from . import base as dsbase
from .base import CaseRef, DatasetAdapter, Detection

_STEM = re.compile(r"^(1\.3\.6\.1\.4\.1\.9328\.50\.4\.\d+|CTC-\d+|liver_\d+|HN_P\d+|volume-covid19-A-\d+(_\d+)?_ct)$")
_GROUPS = {"COLONOG", "COVID-19", "HNSCC-3DCT-RT", "MSD-T10"}
_SECTIONS = {"trainset": "train", "test_public": "test_public", "test_private": "test_private"}


def group_of(stem: str) -> str:
    """Source sub-dataset from a CTSpine1K file stem."""
    if stem.startswith(("1.3.6.1.4.1.9328.50.4.", "CTC-")):
        return "COLONOG"
    if stem.startswith("liver_"):
        return "MSD-T10"
    if stem.startswith("volume-covid19-A-"):
        return "COVID-19"
    if stem.startswith("HN_P"):
        return "HNSCC-3DCT-RT"
    return "unknown"


def parse_split_file(path: Path) -> dict[str, str]:
    """File name (``X.nii.gz``) -> split, from ``data_split.txt`` (CRLF or LF)."""
    out: dict[str, str] = {}
    section = None
    for raw in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.endswith(":") and line[:-1] in _SECTIONS:
            section = _SECTIONS[line[:-1]]
            continue
        if section is not None:
            out[line] = section
    return out


def _split_file(root: Path) -> Path | None:
    for cand in (root / "data_split.txt", root / "metadata" / "data_split.txt",
                 root / "raw_data" / "data_split.txt"):
        if cand.is_file() and b"trainset:" in cand.read_bytes()[:4096]:
            return cand
    return None


def _is_root(p: Path) -> bool:
    return (
        (p / "raw_data" / "volumes").is_dir()
        or _split_file(p) is not None
        or ((p / "data").is_dir() and (p / "label").is_dir())
    )


class CTSpine1KAdapter(DatasetAdapter):
    kind = "ctspine1k"
    title = "CTSpine1K (CT, vertebrae C1-L6)"
    columns = ("group",)
    assumptions = (
        "Labels 1-25 follow VerSe: 1-7 C1-C7, 8-19 T1-T12, 20-24 L1-L5, 25 L6 (not the sacrum).",
        "Image and label dtypes are taken from each file (not documented).",
    )

    def detect(self, path: Path) -> Detection | None:
        """See :meth:`DatasetAdapter.detect`."""
        path = Path(path)
        for p in [path, *list(path.parents)[:5]]:
            if p.is_dir() and _is_root(p):
                return Detection(self.kind, p, 0.95, "raw_data/volumes, data/+label/ or data_split.txt")
        folder = path if path.is_dir() else path.parent
        if path.is_file():
            stem = dsbase.nifti_stem(path)
            if stem.endswith("_seg"):
                stem = stem[:-4]
            if _STEM.match(stem):
                return Detection(self.kind, folder, 0.85, "CTSpine1K file name")
            return None
        n = 0
        for f in dsbase.scan_files(folder, (".nii.gz", ".nii"), max_depth=2):
            stem = dsbase.nifti_stem(f)
            stem = stem[:-4] if stem.endswith("_seg") else stem
            if _STEM.match(stem):
                n += 1
            if n >= 1 and f.name.endswith("_seg.nii.gz"):
                return Detection(self.kind, folder, 0.8, "CTSpine1K names with _seg labels")
        return Detection(self.kind, folder, 0.6, "CTSpine1K file names") if n else None

    def list_cases(self, root: Path, within: Path | None = None, *, warn=None) -> list[CaseRef]:
        """See :meth:`DatasetAdapter.list_cases`."""
        root = Path(root)
        base = Path(within) if within is not None else root
        split_path = _split_file(root)
        splits = parse_split_file(split_path) if split_path else {}
        pairs = dsbase.pair_images_and_masks(base, "_seg", warn, groups=_GROUPS)
        groups = [img.parent.name if img.parent.name in _GROUPS else group_of(dsbase.nifti_stem(img))
                  for img, _ in pairs]
        ids = dsbase.unique_case_ids([dsbase.nifti_stem(img) for img, _ in pairs], groups, warn)
        cases = []
        for (img, lab), group, case_id in zip(pairs, groups, ids, strict=True):
            stem = dsbase.nifti_stem(img)
            split = splits.get(img.name) or splits.get(f"{stem}.nii.gz")
            if split is None:
                parts = {p.lower() for p in img.relative_to(base).parts[:-1]}
                split = "train" if "train" in parts else "test" if "test" in parts else "unknown"
            cases.append(CaseRef(
                kind=self.kind, case_id=case_id, split=split, images={"CT": str(img)},
                labels=str(lab) if lab else None,
                metadata={"group": group, "file": img.name},
            ))
        cases.sort(key=lambda c: (c.metadata["group"], c.case_id))
        return cases

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:
        """See :meth:`DatasetAdapter.load_case`."""
        return load_nifti_case(
            ref.images["CT"], ref.labels, label_scheme="ctspine1k", modality="CT",
            case_id=ref.case_id, dataset=self.kind,
            metadata={"split": ref.split, **ref.metadata},
        )
