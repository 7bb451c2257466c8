"""Any folder of DICOM series as a dataset: one case per image series (PACS exports,
scanner media, the DICOM part of a dataset download).

Series are found by :func:`napari_spine.io.dicom.scan` (every file read once, pixel data
left in the file); localizers and non-image objects are not cases. A case is loaded by
its SeriesInstanceUID from the folder that holds its files. Claimed with a low score, so
that a dataset adapter that knows the folder wins.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..case import SpineCase
from ..io import dicom
from ..io.nifti import load_case as load_any_case
from .base import CaseRef, DatasetAdapter, Detection


class DicomFolderAdapter(DatasetAdapter):
    """Image series under a folder, each a case."""

    kind = "dicom"
    title = "DICOM series"
    columns = ("modality", "description", "orientation", "images")
    assumptions = ("every image series under the folder is one case; localizers and non-image "
                   "objects (reports, presentation states, segmentations) are left out",)

    def detect(self, path: Path) -> Detection | None:
        """See :meth:`DatasetAdapter.detect`."""
        path = Path(path)
        if path.is_dir() and dicom.is_dicom_source(path):
            return Detection(self.kind, path, 0.3, "DICOM files")
        return None

    def list_cases(self, root: Path, within: Path | None = None, *, warn=None) -> list[CaseRef]:
        """See :meth:`DatasetAdapter.list_cases`."""
        found = dicom.scan(within or root)
        refs: list[CaseRef] = []
        seen: dict[str, int] = {}
        for s in found:
            if s.localizer:
                continue
            folder = Path(os.path.commonpath(s.files)) if len(s.files) > 1 else Path(s.files[0]).parent
            base = f"{folder.name}_S{s.number}" if s.number is not None else folder.name
            seen[base] = seen.get(base, 0) + 1
            case_id = base if seen[base] == 1 else f"{base}_{seen[base]}"
            refs.append(CaseRef(self.kind, case_id, "unknown", {"image": str(folder)}, None,
                                {"series_uid": s.uid, "modality": s.modality, "description": s.description,
                                 "orientation": s.orientation, "images": s.frames}))
        return refs

    def load_case(self, ref: CaseRef, sequence: str | None = None) -> SpineCase:
        """See :meth:`DatasetAdapter.load_case`."""
        return load_any_case(ref.images["image"], series=ref.metadata["series_uid"], case_id=ref.case_id,
                             dataset=self.kind)
