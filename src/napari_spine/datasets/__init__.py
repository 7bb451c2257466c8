"""Dataset adapters, registered in one place, and auto-detection.

``open_dataset(path)`` accepts a dataset root, any folder inside it, a single file or an
archive, asks every adapter for a claim and uses the most confident one.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpineIOError, reading
from . import _pt
from .base import CaseRef, Dataset, DatasetAdapter, Detection
from .cspineseg import CSpineSegAdapter
from .ctspine1k import CTSpine1KAdapter
from .dicom_folder import DicomFolderAdapter
from .mmcsd import MMCSDAdapter
from .spine_msca import SpineMSCAAdapter
from .ssmspine import SSMSpineAdapter

__all__ = ["ADAPTERS", "CaseRef", "Dataset", "DatasetAdapter", "Detection", "detect",
           "get_adapter", "open_dataset"]

#: Every dataset napari-spine knows, in one tuple.
ADAPTERS: tuple[DatasetAdapter, ...] = (
    MMCSDAdapter(), CSpineSegAdapter(), CTSpine1KAdapter(), SSMSpineAdapter(), SpineMSCAAdapter(),
    DicomFolderAdapter(),
)


def get_adapter(kind: str) -> DatasetAdapter:
    """The adapter of a dataset kind (``"mmcsd"``, ``"cspineseg"``, ``"ctspine1k"``,
    ``"ssmspine"``, ``"spine_msca"``)."""
    for a in ADAPTERS:
        if a.kind == kind:
            return a
    raise KeyError(f"unknown dataset kind {kind!r}; known: {', '.join(a.kind for a in ADAPTERS)}")


def detect(path: str | os.PathLike) -> Detection | None:
    """The most confident adapter claim on ``path`` (``None`` if no adapter recognises it)."""
    p = Path(path)
    if not p.exists():
        raise SpineIOError(f"{p}: no such file or folder")
    claims: list[Detection] = []
    errors: list[str] = []
    for a in ADAPTERS:
        try:
            with reading(p, f"check as {a.kind}"):
                d = a.detect(p)
        except SpineIOError as exc:  # e.g. a refused .pt: remember, let others try
            errors.append(str(exc))
            continue
        if d is not None:
            claims.append(d)
    if not claims:
        if errors:
            raise SpineIOError(errors[0])
        return None
    return max(claims, key=lambda d: d.score)


def _mentions(ref: CaseRef, path: Path) -> bool:
    """Whether a case is stored in (or inside) the file ``path``."""
    s = str(path)
    locations = [*ref.images.values(), *([ref.labels] if ref.labels else [])]
    return any(loc == s or _pt.location_path(loc) == s for loc in locations)


def open_dataset(path: str | os.PathLike, kind: str | None = None) -> Dataset:
    """Detect and list a dataset; ``.cases`` holds one :class:`CaseRef` per case.

    ``path`` may be the dataset root, a folder inside it (only the cases below it are
    listed; splits and metadata still come from the root), a single file or an archive.
    Every problem with the files is a :class:`SpineIOError` naming the file.
    """
    if kind is not None:
        get_adapter(kind)  # an unknown kind is a KeyError, as before
    with reading(path, "open as a dataset"):
        return _open_dataset(Path(path), kind)


def _open_dataset(p: Path, kind: str | None) -> Dataset:
    if kind is not None:
        adapter = get_adapter(kind)
        det = adapter.detect(p) or Detection(kind, p if p.is_dir() else p.parent, 0.0, "forced")
    else:
        det = detect(p)
        if det is None:
            raise SpineIOError(
                f"{p}: not recognised as MMCSD, CSpineSeg, CTSpine1K, SSMSpine or Spine-MSCA "
                "(see the README for the layouts each one expects)"
            )
        adapter = get_adapter(det.kind)
    warnings: list[str] = []

    def warn(msg: str) -> None:  # the same problem is said once, however often it is met
        if msg not in warnings:
            warnings.append(msg)

    if p.is_file():
        cases = [c for c in adapter.list_cases(det.root, warn=warn) if _mentions(c, p)]
        if not cases:
            cases = adapter.list_cases(det.root, within=p, warn=warn)
    else:
        cases = adapter.list_cases(det.root, within=p if p != det.root else None, warn=warn)
    warnings[:0] = adapter.dataset_warnings(det.root)
    if not cases:
        warnings.append(f"{p}: no cases found for {adapter.title}")
    return Dataset(kind=adapter.kind, root=det.root, adapter=adapter, cases=cases,
                   detection=det, warnings=warnings)
