"""SpineCase <-> napari layer data. The only translation between the core and napari.

Layers get a diagonal ``scale``/``translate`` (see :mod:`napari_spine.geometry`), never a
full affine. Image and labels arrays are passed through as they are (views of the loaded
file arrays, no copies); labels are uint8 canonical ids with the anatomy table's colours
and a ``features`` table so napari's status bar names the structure under the cursor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import geometry
from ..anatomy import ontology
from ..case import Landmarks, SpineCase
from ..display import AXIS_LABELS, default_contrast

__all__ = [
    "META_KEY",
    "case_from_layer",
    "case_to_layer_data",
    "image_layer_data",
    "labels_colormap",
    "labels_features",
    "labels_layer_data",
    "landmarks_layer_data",
]

META_KEY = "napari_spine"


def labels_colormap(ids: Any = None):
    """A :class:`napari.utils.colormaps.DirectLabelColormap` from the anatomy table."""
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[int | None, Any] = {None: (0.5, 0.5, 0.5, 1.0), 0: (0.0, 0.0, 0.0, 0.0)}
    for s in ontology.STRUCTURES:
        colors[s.id] = s.color
    return DirectLabelColormap(color_dict=colors)


def labels_features(present: Any = ()) -> dict[str, list]:
    """Feature table (one row per structure) so napari shows names under the cursor."""
    ids = [0] + [s.id for s in ontology.STRUCTURES]
    present_set = set(int(i) for i in present)
    return {
        "index": ids,
        "name": ["background"] + [ontology.display_name(s.id, present_set) for s in ontology.STRUCTURES],
        "kind": ["background"] + [s.kind for s in ontology.STRUCTURES],
    }


def _meta(case: SpineCase, role: str) -> dict[str, Any]:
    return {META_KEY: {"case": case, "role": role, "case_id": case.case_id}}


def _axes(case: SpineCase) -> dict[str, Any]:
    """The sliders' names for a 3-D case: the way each display axis runs (not "-3")."""
    return {"axis_labels": AXIS_LABELS} if len(case.shape) == 3 else {}


def image_layer_data(case: SpineCase, name: str | None = None) -> tuple:
    """``(data, kwargs, "image")`` for napari: the case's image on its display grid, with
    the modality's default contrast."""
    d = case.display
    kwargs = {
        "name": name or f"{case.case_id} {case.modality}",
        "scale": d.scale,
        "translate": d.translate,
        "contrast_limits": default_contrast(case.modality, case.image),
        "colormap": "gray",
        "metadata": _meta(case, "image"),
        "units": "mm",
        **_axes(case),
    }
    return (case.image, kwargs, "image")


def labels_layer_data(case: SpineCase, labels: np.ndarray | None = None, name: str | None = None) -> tuple:
    """``(data, kwargs, "labels")`` for napari: the case's labels (or ``labels``, e.g. a
    prediction) with the anatomy colours and names."""
    lab = case.labels if labels is None else labels
    if lab is None:
        raise ValueError(f"case {case.case_id} has no labels")
    if lab.dtype != np.uint8 and lab.size and int(lab.max()) < 256:
        lab = lab.astype(np.uint8)
    d = case.display
    kwargs = {
        "name": name or f"{case.case_id} labels",
        "scale": d.scale,
        "translate": d.translate,
        "colormap": labels_colormap(),
        "features": labels_features(case.structures_present if labels is None else ()),
        "opacity": 0.5,
        # labels that are not the case's own (a prediction) travel without the file's native
        # ids, so saving them never writes the loaded file's other structures back
        "metadata": _meta(case if labels is None else case.with_labels(lab), "labels"),
        "units": "mm",
        **_axes(case),
    }
    return (lab, kwargs, "labels")


def landmarks_layer_data(case: SpineCase, landmarks: Landmarks | None = None, name: str | None = None) -> tuple:
    """``(data, kwargs, "points")`` for napari: the case's landmarks coloured by structure."""
    lm = landmarks if landmarks is not None else case.landmarks
    if lm is None:
        raise ValueError(f"case {case.case_id} has no landmarks")
    d = case.display
    colors = np.array([ontology.BY_ID[int(i)].color if int(i) in ontology.BY_ID else (1, 1, 1, 1)
                       for i in lm.structure_ids]).reshape(-1, 4)
    kwargs = {
        "name": name or f"{case.case_id} landmarks",
        "scale": d.scale,
        "translate": d.translate,
        "features": {
            "name": list(lm.names),
            "structure": list(lm.structure_names),
            "structure_id": np.asarray(lm.structure_ids, dtype=np.int64),
        },
        "face_color": colors,
        "border_color": "white",
        "size": 5,
        "text": {"string": "{name}", "size": 8, "color": "white", "anchor": "upper_left",
                 "visible": False},
        "metadata": _meta(case, "landmarks"),
        "units": "mm",
        **_axes(case),
    }
    return (lm.coords.copy(), kwargs, "points")


def contours_layer_data(case: SpineCase, name: str | None = None) -> tuple | None:
    """Closed outlines (one polygon per structure) from contour landmarks, if the case has them."""
    lm = case.landmarks
    if lm is None or not case.metadata.get("contours"):
        return None
    polys, ids = [], []
    change = np.flatnonzero(np.diff(lm.structure_ids)) + 1
    for start, stop in zip(np.r_[0, change], np.r_[change, len(lm)]):
        polys.append(lm.coords[start:stop])
        ids.append(int(lm.structure_ids[start]))
    d = case.display
    kwargs = {
        "name": name or f"{case.case_id} outlines",
        "shape_type": "polygon",
        "scale": d.scale,
        "translate": d.translate,
        "edge_color": [ontology.color_of(i) for i in ids],
        "face_color": "transparent",
        "edge_width": 1.0,
        "features": {"name": [ontology.name_of(i) for i in ids], "structure_id": ids},
        "metadata": _meta(case, "outlines"),
    }
    return (polys, kwargs, "shapes")


def case_to_layer_data(case: SpineCase, image_name: str | None = None) -> list[tuple]:
    """Image, labels, landmarks and outlines (whichever the case has), ready for napari."""
    layers = [image_layer_data(case, name=image_name)]
    if case.labels is not None:
        layers.append(labels_layer_data(case))
    if case.landmarks is not None and len(case.landmarks):
        layers.append(landmarks_layer_data(case))
        outlines = contours_layer_data(case)
        if outlines is not None:
            layers.append(outlines)
    return layers


def plain_case(image: np.ndarray, scale, translate, case_id: str) -> SpineCase:
    """A case for an array that napari shows with a diagonal ``scale``/``translate`` (a layer
    that napari-spine did not open): its geometry is the display frame's."""
    affine = geometry.display_affine_from_transform(list(scale)[-3:], list(translate)[-3:])
    return SpineCase.from_arrays(image, affine, case_id=case_id, dataset="napari")


def case_from_layer(layer_or_meta: Any) -> SpineCase | None:
    """The SpineCase a layer (or a writer's ``meta`` dict) belongs to, if any."""
    meta = getattr(layer_or_meta, "metadata", None)
    if meta is None and isinstance(layer_or_meta, dict):
        meta = layer_or_meta.get("metadata", {})
    entry = (meta or {}).get(META_KEY)
    if isinstance(entry, dict) and isinstance(entry.get("case"), SpineCase):
        return entry["case"]
    return None


def center_view_on(viewer, layer, data_point) -> tuple[float, ...]:
    """Show the slice through ``data_point`` (voxel coordinates of ``layer``) and centre it."""
    world = np.asarray(layer.data_to_world(np.asarray(data_point, dtype=float)))
    viewer.dims.set_point(range(len(world)), world)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = tuple(world[-2:]) if viewer.dims.ndisplay == 2 else tuple(world)
    from ._planes import planes_of

    if (planes := planes_of(viewer)) is not None:
        planes.centre(world)  # the axial and coronal views too
    return tuple(float(w) for w in world)
