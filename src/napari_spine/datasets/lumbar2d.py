"""The two 2-D lumbar ``.pt`` datasets: SSMSpine and Spine-MSCA.

Both store 512x512 mid-sagittal slices with row 0 superior and anterior on the left, and
labels 1-5 L1-L5, 6 S1, 7-11 discs L1/L2 ... L5/S1 (datasets.md 4-5). A slice becomes a
``(1, 512, 512)`` case in the display convention of :mod:`napari_spine.geometry`. They have
no physical pixel size: unit spacing is used and said.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .. import geometry
from ..case import Landmarks, SpineCase
from ..errors import SpineIOError
from ..io_nifti import labels_to_int
from ..labelmaps import get_label_map
from . import _pt
from .base import CaseRef, DatasetAdapter, Detection, scan_files

_BONES = (20, 21, 22, 23, 24, 26)  # L1-L5, S1
_DISCS = (120, 121, 122, 123, 124)  # L1/L2 ... L5/S1
_UNIT_SPACING = "no physical pixel size in this dataset: 1 pixel = 1 unit (distances in pixels)"


def _split_from(parts: list[str]) -> str:
    for part in reversed(parts):
        p = part.lower()
        if re.search(r"(^|[_\-])(vail|vali|val|validation)(\.|$|[_\-])", p):
            return "validation"
        if re.search(r"(^|[_\-])test(\.|$|[_\-])", p):
            return "test"
        if re.search(r"(^|[_\-])train(\.|$|[_\-])", p):
            return "train"
    return "unknown"


def _location_parts(loc: str, base: Path) -> list[str]:
    archive, member = _pt.split_location(loc)
    if member is not None:
        stem, inner = Path(archive).name.split(".zip")[0], list(PurePosixPath(member).parts)
        return inner if inner and inner[0].lower() == stem.lower() else [stem, *inner]
    try:
        return list(Path(loc).relative_to(base).parts)
    except ValueError:
        return list(Path(loc).parts)


def _case_id(loc: str, base: Path, strip_file: bool) -> str:
    parts = _location_parts(loc, base)
    if strip_file:
        parts = parts[:-1]
    elif parts:
        parts[-1] = parts[-1][: -len(".pt")] if parts[-1].lower().endswith(".pt") else parts[-1]
    return "/".join(parts) or Path(loc).stem


def _as_2d(arr: Any, loc: str, key: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise SpineIOError(f"{loc}: '{key}' has shape {a.shape}, expected a 2-D slice (H, W) or (1, H, W)")
    return a


def make_2d_case(image, labels, *, loc: str, kind: str, case_id: str, scheme: str,
                 landmarks: Landmarks | None = None, metadata: dict | None = None) -> SpineCase:
    img = _as_2d(image, loc, "img")
    lab = None
    if labels is not None:
        lab2 = _as_2d(labels, loc, "label")
        if lab2.shape != img.shape:
            raise SpineIOError(f"{loc}: label shape {lab2.shape} differs from image shape {img.shape}")
        native = labels_to_int(np.ascontiguousarray(lab2), loc)
        lab = get_label_map(scheme).to_canonical_array(native, source=loc)[None]
        if not lab.flags.writeable:
            lab = lab.copy()
    affine = geometry.display_affine_from_transform((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    return SpineCase.from_arrays(
        np.ascontiguousarray(img)[None], affine, lab, case_id=case_id, dataset=kind,
        modality="MR-T2", landmarks=landmarks, label_scheme=scheme,
        metadata={"location": loc, "pixel_spacing": "none (unit)", **(metadata or {})},
        path=loc, extra_warnings=(_UNIT_SPACING,),
    )


def contour_landmarks(bone: Any, disk: Any, loc: str) -> Landmarks:
    """SSMSpine ``bone`` (6, N, 2) and ``disk`` (5, M, 2) contours, (x, y) = (column, row)."""
    from .. import ontology

    coords, ids, names = [], [], []
    for arr, sids, key in ((bone, _BONES, "bone"), (disk, _DISCS, "disk")):
        a = np.asarray(arr, dtype=np.float64)
        if a.ndim != 3 or a.shape[0] != len(sids) or a.shape[2] != 2:
            raise SpineIOError(f"{loc}: '{key}' has shape {a.shape}, expected ({len(sids)}, N, 2)")
        for k, sid in enumerate(sids):
            xy = a[k]
            coords.append(np.c_[np.zeros(len(xy)), xy[:, 1], xy[:, 0]])  # (0, row, col)
            ids.extend([sid] * len(xy))
            names.extend(f"{ontology.name_of(sid)} contour {i}" for i in range(len(xy)))
    return Landmarks(np.concatenate(coords), np.array(ids), tuple(names))


class SSMSpineAdapter(DatasetAdapter):
    kind = "ssmspine"
    columns = ("patient_texture",)
    sequence_choices = ("img", "img_corrected", "img_equalized")
    title = "SSMSpine (synthetic 2-D lumbar MRI, masks and shape landmarks)"
    assumptions = (
        "Landmarks are (x, y) = (column, row) in pixels, without a half-pixel offset.",
        _UNIT_SPACING.capitalize() + ".",
        "Splits come from folder or archive names (Train / Vali / Test).",
    )
    VARIANTS = ("img", "img_corrected", "img_equalized")

    def detect(self, path: Path) -> Detection | None:
        path = Path(path)
        if path.is_file() and path.name.lower().startswith("ssmspine") and ".zip" in path.name.lower():
            return Detection(self.kind, path.parent, 0.9, "SSMSpine archive name")
        if path.is_dir() and any(f.name.lower().startswith("ssmspine") for f in path.glob("*.zip")):
            return Detection(self.kind, path, 0.9, "SSMSpine archives")
        first = _first_pt(path)
        if first is None:
            return None
        keys = _pt.peek_keys(first)
        if {"img", "label", "bone", "disk"} <= keys:
            return Detection(self.kind, _dataset_root(path), 0.95,
                             ".pt dict with img, label, bone and disk")
        return None

    def list_cases(self, root: Path, within: Path | None = None, *, warn=None) -> list[CaseRef]:
        base = Path(within) if within is not None else Path(root)
        cases = []
        for loc in (_pt.iter_pt_files(base, warn) if base.is_dir() else [str(base)]):
            parts = _location_parts(loc, base)
            cases.append(CaseRef(
                kind=self.kind, case_id=_case_id(loc, base, strip_file=False),
                split=_split_from(parts), images={v: loc for v in self.VARIANTS},
                labels=loc, metadata={"patient_texture": next((p for p in parts if re.match(r"^p\d+$", p)), "")},
            ))
        return cases

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:
        variant = sequence or "img"
        loc = ref.images.get(variant) or next(iter(ref.images.values()))
        data = _pt.load_pt(loc)
        if not isinstance(data, dict):
            raise SpineIOError(f"{loc}: expected a dict with 'img', 'label', 'bone' and 'disk'")
        missing = [k for k in (variant, "label") if k not in data]
        if missing:
            raise SpineIOError(f"{loc}: missing key(s) {', '.join(missing)} (has {', '.join(sorted(data))})")
        lm = contour_landmarks(data["bone"], data["disk"], loc) if "bone" in data and "disk" in data else None
        return make_2d_case(
            data[variant], data["label"], loc=loc, kind=self.kind, case_id=ref.case_id,
            scheme="ssmspine", landmarks=lm,
            metadata={"split": ref.split, "image_variant": variant, "contours": lm is not None,
                      **ref.metadata},
        )


class SpineMSCAAdapter(DatasetAdapter):
    kind = "spine_msca"
    columns = ("layout",)
    title = "Spine-MSCA (2-D lumbar T2 MRI, L1-S1 and five discs)"
    assumptions = (
        "Both layouts are accepted: a folder with img.pt + label.pt, or one .pt dict "
        "with 'img' and 'label' (the archive contents are not documented).",
        "Train.zip.001-003 are byte parts of one zip and are read joined, without unpacking.",
        _UNIT_SPACING.capitalize() + ".",
    )

    def detect(self, path: Path) -> Detection | None:
        path = Path(path)
        name = path.name.lower()
        if path.is_file() and re.match(r"^(train\.zip\.\d{3}|vail\.zip|test\.zip|train\.zip)$", name):
            return Detection(self.kind, path.parent, 0.9, "Spine-MSCA archive name")
        if path.is_dir() and ((path / "Vail.zip").exists() or any(path.glob("Train.zip.[0-9][0-9][0-9]"))):
            return Detection(self.kind, path, 0.95, "Train.zip.NNN / Vail.zip")
        if path.is_file() and path.name in ("img.pt", "label.pt") and (path.parent / "img.pt").is_file():
            return Detection(self.kind, _dataset_root(path), 0.9, "a case folder with img.pt and label.pt")
        if path.is_dir() and (path / "img.pt").is_file() and (path / "label.pt").is_file():
            return Detection(self.kind, _dataset_root(path), 0.9, "a folder with img.pt and label.pt")
        if path.is_dir():
            for f in scan_files(path, ("img.pt",), max_depth=3):
                if (f.parent / "label.pt").is_file():
                    return Detection(self.kind, path, 0.9, "folders with img.pt and label.pt")
        first = _first_pt(path)
        if first is not None and PurePosixPath(_pt.split_location(first)[1] or first).name not in ("img.pt", "label.pt"):
            if _pt.peek_keys(first) == {"img", "label"}:
                return Detection(self.kind, _dataset_root(path), 0.85,
                                 ".pt dict with exactly img and label")
        return None

    def list_cases(self, root: Path, within: Path | None = None, *, warn=None) -> list[CaseRef]:
        base = Path(within) if within is not None else Path(root)
        locs = list(_pt.iter_pt_files(base, warn)) if base.is_dir() else (
            [f"{base}{_pt.SEP}{m}" for m in _pt.list_members(base)] if ".zip" in base.name.lower() else [str(base)])
        folders: dict[str, dict[str, str]] = {}
        singles: list[str] = []
        for loc in locs:
            fname = PurePosixPath(_pt.split_location(loc)[1] or Path(loc).name).name
            if fname in ("img.pt", "label.pt"):
                folders.setdefault(loc.rsplit("/", 1)[0] if "/" in loc else loc, {})[fname] = loc
            else:
                singles.append(loc)
        cases = []
        for files in folders.values():
            if "img.pt" not in files:
                continue
            loc = files["img.pt"]
            cases.append(CaseRef(
                kind=self.kind, case_id=_case_id(loc, base, strip_file=True),
                split=_split_from(_location_parts(loc, base)), images={"img": loc},
                labels=files.get("label.pt"), metadata={"layout": "img.pt + label.pt"},
            ))
        for loc in singles:
            cases.append(CaseRef(
                kind=self.kind, case_id=_case_id(loc, base, strip_file=False),
                split=_split_from(_location_parts(loc, base)), images={"img": loc}, labels=loc,
                metadata={"layout": "one .pt dict"},
            ))
        cases.sort(key=lambda c: (c.split, c.case_id))
        return cases

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:
        loc = ref.images["img"]
        data = _pt.load_pt(loc)
        if isinstance(data, dict):
            if "img" not in data:
                raise SpineIOError(f"{loc}: no 'img' key (has {', '.join(sorted(data))})")
            image, labels = data["img"], data.get("label")
        else:
            image, labels = data, None
        if ref.labels and ref.labels != loc:
            lab = _pt.load_pt(ref.labels)
            labels = lab.get("label") if isinstance(lab, dict) else lab
        return make_2d_case(image, labels, loc=loc, kind=self.kind, case_id=ref.case_id,
                            scheme="spine_msca", metadata={"split": ref.split, **ref.metadata})


_INNER = re.compile(r"^(p\d+|train|test|vail|vali|val|validation)$", re.IGNORECASE)


def _dataset_root(path: Path) -> Path:
    """Climb from a file or case folder over case (``p<k>``) and split folders to the root."""
    folder = path.parent if path.is_file() else path
    if (folder / "img.pt").is_file() and folder != path:
        folder = folder.parent
    elif (folder / "img.pt").is_file() and path.is_dir() and _INNER.match(folder.parent.name):
        folder = folder.parent
    while _INNER.match(folder.name) and folder.parent != folder:
        folder = folder.parent
    return folder


def _first_pt(path: Path) -> str | None:
    if path.is_file():
        return str(path) if path.name.lower().endswith(".pt") else None
    for loc in _pt.iter_pt_files(path):
        return loc
    return None
