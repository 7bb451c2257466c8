"""SSMSpine: synthetic 2-D lumbar MRI slices with masks and bone/disc shape contours (``.pt``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..anatomy import ontology
from ..case import Landmarks, SpineCase
from ..errors import SpineIOError
from . import _pt
from ._slices2d import (
    UNIT_SPACING,
    case_id_of,
    dataset_root,
    first_pt,
    location_parts,
    make_2d_case,
    split_from,
)
from .base import CaseRef, DatasetAdapter, Detection

_BONES = (20, 21, 22, 23, 24, 26)  # L1-L5, S1
_DISCS = (120, 121, 122, 123, 124)  # L1/L2 ... L5/S1


def contour_landmarks(bone: Any, disk: Any, loc: str) -> Landmarks:
    """SSMSpine ``bone`` (6, N, 2) and ``disk`` (5, M, 2) contours, (x, y) = (column, row)."""


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
        UNIT_SPACING.capitalize() + ".",
        "Splits come from folder or archive names (Train / Vali / Test).",
    )
    VARIANTS = ("img", "img_corrected", "img_equalized")

    def detect(self, path: Path) -> Detection | None:
        """See :meth:`DatasetAdapter.detect`."""
        path = Path(path)
        if path.is_file() and path.name.lower().startswith("ssmspine") and ".zip" in path.name.lower():
            return Detection(self.kind, path.parent, 0.9, "SSMSpine archive name")
        if path.is_dir() and any(f.name.lower().startswith("ssmspine") for f in path.glob("*.zip")):
            return Detection(self.kind, path, 0.9, "SSMSpine archives")
        first = first_pt(path)
        if first is None:
            return None
        keys = _pt.peek_keys(first)
        if {"img", "label", "bone", "disk"} <= keys:
            return Detection(self.kind, dataset_root(path), 0.95,
                             ".pt dict with img, label, bone and disk")
        return None

    def list_cases(self, root: Path, within: Path | None = None, *, warn=None) -> list[CaseRef]:
        """See :meth:`DatasetAdapter.list_cases`."""
        base = Path(within) if within is not None else Path(root)
        cases = []
        for loc in (_pt.iter_pt_files(base, warn) if base.is_dir() else [str(base)]):
            parts = location_parts(loc, base)
            cases.append(CaseRef(
                kind=self.kind, case_id=case_id_of(loc, base, strip_file=False),
                split=split_from(parts), images={v: loc for v in self.VARIANTS},
                labels=loc, metadata={"patient_texture": next((p for p in parts if re.match(r"^p\d+$", p)), "")},
            ))
        return cases

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:
        """See :meth:`DatasetAdapter.load_case`."""
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
