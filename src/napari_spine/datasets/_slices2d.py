"""What the two 2-D lumbar ``.pt`` datasets (SSMSpine and Spine-MSCA) share.

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
from ..anatomy.labelmaps import get_label_map
from ..case import Landmarks, SpineCase
from ..errors import SpineIOError
from ..io.nifti import labels_to_int
from . import _pt

UNIT_SPACING = "no physical pixel size in this dataset: 1 pixel = 1 unit (distances in pixels)"


_SPLIT_WORDS = (("validation", "vail|vali|val|validation"), ("test", "test"), ("train", "train"))


def split_from(parts: list[str]) -> str:
    """The split named by the innermost folder or archive name (train/validation/test)."""
    for part in reversed(parts):
        for split, word in _SPLIT_WORDS:
            if re.search(rf"(^|[_\-])({word})(\.|$|[_\-])", part.lower()):
                return split
    return "unknown"


def location_parts(loc: str, base: Path) -> list[str]:
    """The path parts of a location below ``base`` (archive stem first for a member)."""
    archive, member = _pt.split_location(loc)
    if member is not None:
        stem, inner = Path(archive).name.split(".zip")[0], list(PurePosixPath(member).parts)
        return inner if inner and inner[0].lower() == stem.lower() else [stem, *inner]
    try:
        return list(Path(loc).relative_to(base).parts)
    except ValueError:
        return list(Path(loc).parts)


def case_id_of(loc: str, base: Path, strip_file: bool) -> str:
    """A case id from a location: its parts below ``base``, without ``.pt`` (or the file name)."""
    parts = location_parts(loc, base)
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
    """A ``(1, H, W)`` case from a 2-D slice and its labels in ``scheme``, at unit spacing."""
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
        path=loc, extra_warnings=(UNIT_SPACING,),
    )


_INNER = re.compile(r"^(p\d+|train|test|vail|vali|val|validation)$", re.IGNORECASE)


def dataset_root(path: Path) -> Path:
    """Climb from a file or case folder over case (``p<k>``) and split folders to the root."""
    folder = path.parent if path.is_file() else path
    if (folder / "img.pt").is_file() and folder != path:
        folder = folder.parent
    elif (folder / "img.pt").is_file() and path.is_dir() and _INNER.match(folder.parent.name):
        folder = folder.parent
    while _INNER.match(folder.name) and folder.parent != folder:
        folder = folder.parent
    return folder


def first_pt(path: Path) -> str | None:
    """The first ``.pt`` file at or below ``path`` (archive members included), or None."""
    if path.is_file():
        return str(path) if path.name.lower().endswith(".pt") else None
    for loc in _pt.iter_pt_files(path):
        return loc
    return None
