"""CSpineSeg (Duke cervical spine MRI, MIDRC): sagittal T2, body/disc masks, TSV metadata.

Layouts (datasets.md 2.2): the MIDRC download (``annotation/<stem>.nii.gz``,
``segmentation/<stem>_SEG.nii.gz``, ``structured/*_RSNA_<date>.tsv``) or any folder with
``<stem>.nii.gz`` next to ``<stem>_SEG.nii.gz``; and the nnU-Net raw layout made by the
authors' script (``imagesTr/``, ``labelsTr/``, ``imagesTs/``, ``labelsTs/``, ``dataset.json``).
Masks: 1 vertebral body, 2 intervertebral disc (levels not assigned).

When the download's DICOM series lie under the root too (any folder beside
``annotation/``), each NIfTI is paired with the series whose grid is its own: the
NIfTIs are dcm2niix conversions, and :mod:`napari_spine.io.dicom` lays a series out as
dcm2niix does, so shape and affine match to a micrometre exactly when they are the same
acquisition (no naming convention is assumed). A paired case offers the ``DICOM``
sequence: the series itself, with the mask on it.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from ..case import SpineCase
from ..errors import SpineIOError
from ..io.nifti import load_case as load_nifti_case
from .base import (
    CaseRef,
    DatasetAdapter,
    Detection,
    nifti_stem,
    pair_images_and_masks,
    scan_files,
    unique_case_ids,
)

_STEM = re.compile(r"^\d{6}-\d{6}_Study-MR-\d+_Series-\d+$")
_TSV = re.compile(r"^(annotation_file|case|clinical_manifest|image_manifest|imaging_study|mr_series)_.*\.tsv$")


def _tsv_files(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for folder in (root, root / "structured", root / "metadata"):
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            m = _TSV.match(f.name)
            if m and f.is_file():
                out.setdefault(m.group(1), f)
    return out


def _read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a MIDRC TSV. The files do not quote values, so quotes are read as text: an
    unbalanced quote cannot swallow the lines after it."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except csv.Error as exc:
        raise SpineIOError(f"{path}: not a readable TSV file ({exc})") from None
    except OSError as exc:
        raise SpineIOError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _keyed(rows: list[dict[str, str]], key: str, path: Path, warn) -> dict[str, dict[str, str]]:
    """Rows by ``key``; a key on several rows goes to ``warn`` and the first row is kept."""
    out: dict[str, dict[str, str]] = {}
    dups: list[str] = []
    for r in rows:
        k = r.get(key) or ""
        if k in out:
            dups.append(k)
            continue
        out[k] = r
    if dups and warn is not None:
        shown = ", ".join(sorted(set(dups))[:5])
        warn(f"{path}: {len(dups)} duplicate {key} value(s) ({shown}); the first row of each is used")
    return out


def _first(value: str | None) -> str:
    if not value:
        return ""
    return re.split(r"[,;|\s]+", value.strip().strip("[]\"'"))[0].strip("\"'")


class MidrcMetadata:
    """The MIDRC TSVs joined by their keys (datasets.md 2.5)."""

    KEEP_CASE = ("age_at_index", "sex", "race", "ethnicity")
    KEEP_SERIES = ("manufacturer", "manufacturer_model_name", "magnetic_field_strength",
                   "slice_thickness", "spacing_between_slices", "pixel_spacing",
                   "series_description", "repetition_time", "echo_time")
    KEEP_STUDY = ("study_description", "body_part_examined", "age_at_imaging")

    def __init__(self, files: dict[str, Path], warn=None):
        self.files = files

        def table(name: str, key: str) -> dict[str, dict[str, str]]:
            path = files.get(name)
            return _keyed(_read_tsv(path), key, path, warn) if path is not None else {}

        self.annotation = table("annotation_file", "file_name")
        self.series = table("mr_series", "submitter_id")
        self.study = table("imaging_study", "submitter_id")
        self.case = table("case", "submitter_id")

    def for_file(self, image_name: str) -> dict[str, str]:
        """The MIDRC metadata of an image file: annotation -> series -> study -> case rows
        (the patient id falls back to the file name's first field)."""
        meta: dict[str, str] = {}
        ann = self.annotation.get(image_name)
        series = self.series.get(_first(ann.get("mr_series_files.submitter_id"))) if ann else None
        study = self.study.get(_first(series.get("imaging_studies.submitter_id"))) if series else None
        patient = _first(study.get("case_ids")) if study else ""
        patient = patient or image_name.split("_")[0]
        case = self.case.get(patient)
        meta["patient_id"] = patient
        for src, keys in ((case, self.KEEP_CASE), (study, self.KEEP_STUDY), (series, self.KEEP_SERIES)):
            if src:
                for k in keys:
                    if src.get(k):
                        meta[k] = src[k]
        return meta


def _nnunet_json(root: Path) -> dict | None:
    p = root / "dataset.json"
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _is_cspineseg_nnunet(doc: dict | None) -> bool:
    if not doc:
        return False
    labels = doc.get("labels")
    labels = {str(k).lower(): v for k, v in labels.items()} if isinstance(labels, dict) else {}
    name = str(doc.get("name", doc.get("dataset_name", ""))).lower()
    return "cspineseg" in name or ("vertebrae" in labels and any("disc" in k for k in labels))


class CSpineSegAdapter(DatasetAdapter):
    kind = "cspineseg"
    title = "CSpineSeg (cervical sagittal T2 MRI, body/disc masks)"
    columns = ("sex", "age_at_index", "magnetic_field_strength")
    assumptions = (
        "Mask 1 = vertebral body, 2 = intervertebral disc; levels are not assigned "
        "(use Identify levels to number them).",
        "Expert and nnU-Net masks cannot be told apart from the public metadata.",
        "Orientation comes from each file's affine (not documented).",
    )

    sequence_choices = ("T2 sag", "DICOM")

    def detect(self, path: Path) -> Detection | None:
        """See :meth:`DatasetAdapter.detect`."""
        path = Path(path)
        for p in [path, *list(path.parents)[:4]]:
            if not p.is_dir():
                continue
            if _tsv_files(p):
                return Detection(self.kind, p, 0.95, "MIDRC structured TSVs")
            if _is_cspineseg_nnunet(_nnunet_json(p)):
                return Detection(self.kind, p, 0.9, "nnU-Net dataset.json with vertebrae/disc labels")
            if (p / "annotation").is_dir() and (p / "segmentation").is_dir():
                return Detection(self.kind, p, 0.9, "annotation/ and segmentation/ folders")
        if path.is_file():
            stem = nifti_stem(path)
            stem = stem[:-4] if stem.endswith("_SEG") else stem
            if _STEM.match(stem):
                return Detection(self.kind, path.parent, 0.9, "CSpineSeg file name")
            return None
        for f in scan_files(path, ("_SEG.nii.gz", "_SEG.nii"), max_depth=2):
            if "_SEG.nii" not in f.name:  # scan_files matches case-insensitively; CTSpine1K uses _seg
                continue
            img = f.with_name(f.name.replace("_SEG.nii", ".nii"))
            if img.exists() or _STEM.match(nifti_stem(img)):
                return Detection(self.kind, path, 0.85, "<stem>_SEG.nii.gz masks")
        return None

    def list_cases(self, root: Path, within: Path | None = None, *, warn=None) -> list[CaseRef]:
        """See :meth:`DatasetAdapter.list_cases`."""
        root = Path(root)
        base = Path(within) if within is not None else root
        doc = _nnunet_json(root)
        if doc is not None and ((root / "imagesTr").is_dir() or (root / "imagesTs").is_dir()):
            return self._list_nnunet(root, base)
        meta = MidrcMetadata(_tsv_files(root), warn)
        pairs = pair_images_and_masks(base, "_SEG", warn)
        ids = unique_case_ids([nifti_stem(img) for img, _ in pairs],
                              [img.parent.name for img, _ in pairs], warn)
        series = _dicom_grids(root, warn)
        cases = []
        for (img, m), case_id in zip(pairs, ids, strict=True):
            images, extra = {"T2 sag": str(img)}, {}
            match = _same_grid(img, series) if series else None
            if match is not None:
                images["DICOM"], extra["dicom_series_uid"] = match
            cases.append(CaseRef(
                kind=self.kind, case_id=case_id, split="unknown", images=images,
                labels=str(m) if m else None, metadata={**meta.for_file(img.name), **extra},
            ))
        cases.sort(key=lambda c: c.case_id)
        return cases

    def _list_nnunet(self, root: Path, base: Path) -> list[CaseRef]:
        cases = []
        for img_dir, lab_dir, split in (("imagesTr", "labelsTr", "train"), ("imagesTs", "labelsTs", "test")):
            folder = root / img_dir
            if not folder.is_dir() or (base != root and base not in (folder, *folder.parents)):
                continue
            for f in sorted(folder.glob("*_0000.nii*")):
                case = nifti_stem(f)[: -len("_0000")]
                lab = next((p for p in (root / lab_dir / f"{case}.nii.gz", root / lab_dir / f"{case}.nii")
                            if p.is_file()), None)
                cases.append(CaseRef(
                    kind=self.kind, case_id=f"{img_dir[-2:]}/{case}", split=split,
                    images={"T2 sag": str(f)}, labels=str(lab) if lab else None,
                    metadata={"layout": "nnU-Net raw", "nnunet_case": case},
                ))
        return cases

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:
        """See :meth:`DatasetAdapter.load_case` (``sequence="DICOM"``: the paired series)."""
        dicom_series = sequence == "DICOM" and "DICOM" in ref.images
        return load_nifti_case(
            ref.images["DICOM" if dicom_series else "T2 sag"], ref.labels, label_scheme="cspineseg",
            modality="MR-T2", case_id=ref.case_id, dataset=self.kind,
            metadata={"split": ref.split, **ref.metadata},
            series=ref.metadata.get("dicom_series_uid") if dicom_series else None,
        )


def _dicom_grids(root: Path, warn) -> list[tuple[tuple, object, str, str]]:
    """``(shape, affine, folder, series uid)`` of every DICOM image series in the folders
    beside ``annotation/`` and ``segmentation/`` (headers only)."""
    import os

    from ..io import dicom

    skip = {"annotation", "segmentation", "structured", "metadata", "imagesTr", "imagesTs", "labelsTr", "labelsTs"}
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in skip):
        if not dicom.is_dicom_source(d):
            continue
        for info in dicom.scan(d):
            if info.localizer:
                continue
            try:
                shape, affine = dicom.series_grid(info)
            except SpineIOError as exc:
                if warn:
                    warn(f"DICOM series {info.label()} not paired: {exc}")
                continue
            folder = os.path.commonpath(info.files) if len(info.files) > 1 else str(Path(info.files[0]).parent)
            out.append((tuple(shape), affine, folder, info.uid))
    return out


def _same_grid(image: Path, series) -> tuple[str, str] | None:
    """The (folder, uid) of the series on the grid of the NIfTI ``image``, if one is."""
    import nibabel as nib
    import numpy as np

    from ..io._fastgz import check_readable

    try:
        check_readable(image)  # before nibabel: its gzip reader crashes on an unreadable file
        img = nib.load(str(image))
    except Exception:  # noqa: BLE001 - an unreadable image pairs with nothing; loading it says why
        return None
    shape, affine = tuple(int(s) for s in img.shape[:3]), img.affine
    for s_shape, s_affine, folder, uid in series:
        if s_shape == shape and np.allclose(s_affine, affine, atol=1e-3):
            return folder, uid
    return None
