"""Spine-MSCA: 2-D lumbar T2 MRI slices with L1-S1 and the five discs (``.pt``)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ..case import SpineCase
from ..errors import SpineIOError
from . import _pt
from . import _slices2d as s2d
from .base import CaseRef, DatasetAdapter, Detection, scan_files


class SpineMSCAAdapter(DatasetAdapter):
    kind = "spine_msca"
    columns = ("layout",)
    title = "Spine-MSCA (2-D lumbar T2 MRI, L1-S1 and five discs)"
    assumptions = (
        "Both layouts are accepted: a folder with img.pt + label.pt, or one .pt dict "
        "with 'img' and 'label' (the archive contents are not documented).",
        "Train.zip.001-003 are byte parts of one zip and are read joined, without unpacking.",
        s2d.UNIT_SPACING.capitalize() + ".",
    )

    def detect(self, path: Path) -> Detection | None:
        """See :meth:`DatasetAdapter.detect`."""
        path = Path(path)
        name = path.name.lower()
        if path.is_file() and re.match(r"^(train\.zip\.\d{3}|vail\.zip|test\.zip|train\.zip)$", name):
            return Detection(self.kind, path.parent, 0.9, "Spine-MSCA archive name")
        if path.is_dir() and ((path / "Vail.zip").exists() or any(path.glob("Train.zip.[0-9][0-9][0-9]"))):
            return Detection(self.kind, path, 0.95, "Train.zip.NNN / Vail.zip")
        if path.is_file() and path.name in ("img.pt", "label.pt") and (path.parent / "img.pt").is_file():
            return Detection(self.kind, s2d.dataset_root(path), 0.9, "a case folder with img.pt and label.pt")
        if path.is_dir() and (path / "img.pt").is_file() and (path / "label.pt").is_file():
            return Detection(self.kind, s2d.dataset_root(path), 0.9, "a folder with img.pt and label.pt")
        if path.is_dir():
            for f in scan_files(path, ("img.pt",), max_depth=3):
                if (f.parent / "label.pt").is_file():
                    return Detection(self.kind, path, 0.9, "folders with img.pt and label.pt")
        first = s2d.first_pt(path)
        if first is not None and PurePosixPath(_pt.split_location(first)[1] or first).name not in ("img.pt", "label.pt"):
            if _pt.peek_keys(first) == {"img", "label"}:
                return Detection(self.kind, s2d.dataset_root(path), 0.85,
                                 ".pt dict with exactly img and label")
        return None

    def list_cases(self, root: Path, within: Path | None = None, *, warn=None) -> list[CaseRef]:
        """See :meth:`DatasetAdapter.list_cases`."""
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
                kind=self.kind, case_id=s2d.case_id_of(loc, base, strip_file=True),
                split=s2d.split_from(s2d.location_parts(loc, base)), images={"img": loc},
                labels=files.get("label.pt"), metadata={"layout": "img.pt + label.pt"},
            ))
        for loc in singles:
            cases.append(CaseRef(
                kind=self.kind, case_id=s2d.case_id_of(loc, base, strip_file=False),
                split=s2d.split_from(s2d.location_parts(loc, base)), images={"img": loc}, labels=loc,
                metadata={"layout": "one .pt dict"},
            ))
        cases.sort(key=lambda c: (c.split, c.case_id))
        return cases

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:
        """See :meth:`DatasetAdapter.load_case`."""
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
        return s2d.make_2d_case(image, labels, loc=loc, kind=self.kind, case_id=ref.case_id,
                            scheme="spine_msca", metadata={"split": ref.split, **ref.metadata})
