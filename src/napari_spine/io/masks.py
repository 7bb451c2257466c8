"""A folder of one binary mask per class (TotalSegmentator's default output) as one label map.

TotalSegmentator writes ``segmentations/<class>.nii.gz`` for every class it knows
(``vertebrae_L1.nii.gz``, ``sacrum.nii.gz``, ``spinal_cord.nii.gz``, ``liver.nii.gz`` ...),
most of them empty. :func:`load_mask_folder` reads them all into one labels case: the
classes get native ids 1..N in name order and are named by their file names (so spine
classes map onto the anatomy table and organs are reported, as for any named label file).
All masks must lie on one grid; a voxel claimed by two masks keeps the first class (in name
order) and the overlap is reported: a later class never silently overwrites an earlier one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..case import SpineCase
from ..errors import GeometryError, SpineIOError, reading

__all__ = ["is_mask_folder", "load_mask_folder", "mask_folder_of"]

_CLASS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _masks(folder: Path) -> list[Path]:
    from .nifti import is_nifti_path

    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and is_nifti_path(p)
                      and not p.name.startswith("."))
    except OSError:
        return []


def is_mask_folder(folder: str | os.PathLike) -> bool:
    """True for a folder of per-class masks: two or more NIfTI files, every one named like a
    class (``vertebrae_L1``, ``spinal_cord``), at least one of them a spine structure."""
    from ..anatomy.labelnames import match_anatomy
    from .nifti import nifti_stem

    folder = Path(folder)
    if not folder.is_dir():
        return False
    files = _masks(folder)
    if len(files) < 2:
        return False
    stems = [nifti_stem(f) for f in files]
    if not all(_CLASS_NAME.match(s) for s in stems):
        return False
    return any(match_anatomy(s) not in (None, 0) for s in stems)


def mask_folder_of(path: str | os.PathLike) -> Path | None:
    """The mask folder a path is (or lies in), or None."""
    p = Path(path)
    for cand in (p, p.parent) if p.is_file() or not p.exists() else (p,):
        if is_mask_folder(cand):
            return cand
    return None


def load_mask_folder(folder: str | os.PathLike) -> SpineCase:
    """One labels case from a folder of binary masks (see the module docstring).

    Raises :class:`SpineIOError` naming the folder when it holds no masks or only empty
    ones, and :class:`GeometryError` naming the file whose grid differs from the others.
    """
    folder = Path(folder)
    with reading(folder, "load as a folder of masks"):
        return _load(folder)


def _load(folder: Path) -> SpineCase:
    from ..anatomy.labelnames import LabelNames
    from .nifti import NiftiVolume, _canonical_labels, nifti_stem, read_nifti

    files = _masks(folder)
    if not files:
        raise SpineIOError(f"{folder}: no NIfTI masks in this folder")
    first = None
    combined = None
    names: dict[int, str] = {}
    warnings: list[str] = []
    for native_id, f in enumerate(files, start=1):
        vol = read_nifti(f, what="labels")
        if first is None:
            first = vol
            dtype = np.uint8 if len(files) < 256 else np.uint16
            combined = np.zeros(vol.array.shape, dtype=dtype, order="F")
        elif vol.array.shape != first.array.shape or not np.allclose(vol.affine, first.affine, atol=1e-3):
            raise GeometryError(
                f"{f}: this mask is on another grid than {first.path} (shape {vol.array.shape} vs "
                f"{first.array.shape}); the masks of one folder must share a grid")
        names[native_id] = nifti_stem(f)
        mask = np.asarray(vol.array) != 0
        if not mask.any():
            continue
        taken = mask & (combined != 0)
        if taken.any():
            owners = sorted({names[int(i)] for i in np.unique(combined[taken])})
            warnings.append(f"{int(taken.sum())} voxel(s) of {nifti_stem(f)} are also in "
                            f"{', '.join(owners)}; they stay with {owners[0]}")
            mask &= ~taken
        combined[mask] = native_id
    if not combined.any():
        raise SpineIOError(f"{folder}: every mask in this folder is empty ({len(files)} files)")
    label_names = LabelNames(names, "file names", str(folder))
    merged = NiftiVolume(path=str(folder), array=combined, affine=first.affine, header=first.header)
    canon, scheme, label_warnings, native = _canonical_labels(merged, None, names=label_names)
    return SpineCase.from_arrays(
        canon, first.affine, canon, case_id=folder.name, dataset="nifti", label_scheme=scheme,
        header=first.header, path=str(folder), label_header=first.header, label_path=str(folder),
        metadata={"labels_path": str(folder), "labels_only": True, "mask_files": len(files)},
        native_labels=native,
        extra_warnings=[*warnings, *label_warnings],
    )
