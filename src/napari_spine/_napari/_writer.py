"""napari writers: labels as NIfTI on the source grid, landmarks as JSON/CSV.

Geometry comes from the SpineCase the layer belongs to (its ``metadata``). A labels
layer the user created by hand has none: it is then written with the geometry napari
shows (the layer's scale and translate in the display frame), which is exact for
axis-aligned data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..case import Landmarks, SpineCase
from ..io.export import export_labels, export_landmarks
from ._layers import case_from_layer, plain_case


def _fallback_case(data: np.ndarray, meta: dict[str, Any]) -> SpineCase:
    ndim = data.ndim
    return plain_case(np.zeros(data.shape[-3:], dtype=np.uint8),
                      meta.get("scale", [1.0] * ndim), meta.get("translate", [0.0] * ndim),
                      str(meta.get("name", "labels")))


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a labels layer (canonical ids) as NIfTI in its case's native scheme."""
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(f"{path}: only 3-D labels can be written as NIfTI (got {arr.ndim}-D)")
    case = case_from_layer(meta)
    if case is None or case.shape != arr.shape:
        case = _fallback_case(arr, meta)
    result = export_labels(case, arr, path, scheme="native")
    return [str(result.path)]


def write_landmarks(path: str, data: Any, meta: dict[str, Any], rulers: list | None = None) -> list[str]:
    """Write a points layer as landmarks (JSON or CSV with voxel and world mm), with the
    case's manual ``rulers`` when given."""
    coords = np.asarray(data, dtype=np.float64)
    if coords.size == 0:
        coords = coords.reshape(0, 3)
    case = case_from_layer(meta)
    if case is None:
        raise ValueError(f"{path}: this points layer does not belong to a spine case")
    feats = meta.get("features")
    n = len(coords)
    names: tuple[str, ...] = ()
    ids = np.zeros(n, dtype=np.int64)
    if feats is not None and len(feats) == n:
        if "name" in feats:
            names = tuple(str(v) for v in feats["name"])
        if "structure_id" in feats:
            ids = np.asarray(feats["structure_id"], dtype=np.int64)
    lm = Landmarks(coords[:, -3:], ids, names or tuple(f"point {i}" for i in range(n)))
    return [str(export_landmarks(case, path, lm, rulers=rulers))]
