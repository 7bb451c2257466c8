"""Export corrected cases as an nnU-Net v2 raw dataset, so corrections feed training.

``Dataset<ID>_<Name>/imagesTr/<Name>_<NNN>_0000.nii.gz``, ``labelsTr/<Name>_<NNN>.nii.gz``
and ``dataset.json``. nnU-Net needs consecutive label values, so the canonical ids present
are renumbered 1..K; the map back to napari-spine's canonical ids (and names) is recorded
in ``dataset.json`` under ``"napari_spine"``, with each case's origin.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

from ..anatomy import ontology
from ..anatomy.labelmaps import LabelMap, label_counts
from ..case import SpineCase
from ..errors import ExportError
from .export import export_image, export_labels
from .files import write_bytes_atomic

__all__ = ["export_nnunet_dataset"]


def export_nnunet_dataset(
    cases: Sequence[SpineCase],
    out_dir: str | os.PathLike,
    *,
    dataset_id: int = 500,
    name: str = "SpineCorrected",
) -> Path:
    """Write ``cases`` (with labels) as ``<out_dir>/Dataset<ID>_<name>``; returns that folder."""
    if not re.fullmatch(r"[A-Za-z0-9]+", name):
        raise ExportError(f"{name!r}: an nnU-Net dataset name must be letters and digits only")
    if not 1 <= dataset_id <= 999:
        raise ExportError(f"dataset id {dataset_id} must be between 1 and 999")
    cases = [c for c in cases]
    missing = [c.case_id for c in cases if c.labels is None]
    if missing:
        raise ExportError(f"cases without labels cannot be training cases: {', '.join(missing)}")
    if not cases:
        raise ExportError("no cases to export")
    modalities = {c.modality for c in cases}
    if len(modalities) > 1:
        raise ExportError(f"one nnU-Net dataset needs one modality, got {', '.join(sorted(modalities))}")
    root = Path(out_dir) / f"Dataset{dataset_id:03d}_{name}"
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)

    present: set[int] = set()
    for c in cases:
        present |= set(label_counts(c.labels))
    canon = ontology.sort_cranio_caudal(present)
    to_train = {cid: k + 1 for k, cid in enumerate(canon)}
    lmap = LabelMap(
        name=f"nnunet_{name}", description=f"consecutive training labels of Dataset{dataset_id:03d}_{name}",
        to_canonical=MappingProxyType({v: k for k, v in to_train.items()}),
        from_canonical=MappingProxyType(to_train),
    )
    origins = {}
    for i, case in enumerate(cases):
        ident = f"{name}_{i:03d}"
        export_image(case, root / "imagesTr" / f"{ident}_0000.nii.gz")
        export_labels(case, case.labels, root / "labelsTr" / f"{ident}.nii.gz", scheme=lmap)
        origins[ident] = {"case_id": case.case_id, "dataset": case.dataset, "source": case.source.path}
    doc = {
        "channel_names": {"0": "CT" if "CT" in modalities else "MRI"},
        "labels": {"background": 0, **{ontology.display_name(c, present): k for c, k in to_train.items()}},
        "numTraining": len(cases),
        "file_ending": ".nii.gz",
        "name": name,
        "napari_spine": {
            "label_to_canonical": {str(k): c for c, k in to_train.items()},
            "canonical_names": {str(c): ontology.name_of(c) for c in canon},
            "cases": origins,
        },
    }
    write_bytes_atomic(root / "dataset.json", json.dumps(doc, indent=1).encode("utf-8"))
    return root
