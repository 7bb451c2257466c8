"""The viewer as the panels see it: spine cases, the layers that show them, case switching.

Every panel reads the viewer through a :class:`Workspace`: which labels layer is being
worked on, which case a layer belongs to, the landmarks of a case, and how the next case
replaces the previous one's layers. No panel walks ``viewer.layers`` itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..anatomy import ontology
from ..case import Landmarks, SpineCase
from ._layers import META_KEY, case_from_layer, case_to_layer_data, center_view_on

__all__ = ["Workspace", "guard_layer", "may_leave"]

_KINDS = ("image", "labels", "points", "shapes")

#: layer id -> (the panel method asked before the layer shows another case, its argument)
_GUARDS: dict[str, tuple[weakref.WeakMethod, Any]] = {}


def _layer_id(layer: Any) -> str:
    return str(getattr(layer, "unique_id", None) or id(layer))


def guard_layer(layer: Any, ask: Any, arg: Any) -> None:
    """Before ``layer`` is replaced or removed by a case change, ``ask(arg)`` is called (a
    bound method, held weakly); it returns False to keep the case on show."""
    _GUARDS[_layer_id(layer)] = (weakref.WeakMethod(ask), arg)


def may_leave(layers: Iterable[Any]) -> bool:
    """Ask every guard of ``layers`` whether their case may go (unsaved edits: Save / Keep /
    Discard); False as soon as one says no."""
    for layer in layers:
        entry = _GUARDS.get(_layer_id(layer))
        if entry is None:
            continue
        ask = entry[0]()
        if ask is None:  # the panel is gone
            _GUARDS.pop(_layer_id(layer), None)
            continue
        if not ask(entry[1]):
            return False
    return True


def _layer_class(kind: str):
    import napari.layers as nl

    return {"image": nl.Image, "labels": nl.Labels, "points": nl.Points, "shapes": nl.Shapes}[kind]


class Workspace:
    """A panel's view of the viewer.

    ``loaded`` holds the layers this workspace opened for the case on show
    (:meth:`show_cases`); the next case replaces them unless kept.
    """

    def __init__(self, viewer: Any):
        self.viewer = viewer
        self.loaded: list = []

    # -- finding layers ------------------------------------------------------------------
    def layers_of(self, kind: str, exclude: Iterable[str] = ()) -> list:
        """The viewer's layers of one kind (``"image"``, ``"labels"``, ``"points"``)."""
        klass, skip = _layer_class(kind), set(exclude)
        return [ly for ly in self.viewer.layers if isinstance(ly, klass) and ly.name not in skip]

    def layer_named(self, name: str, kind: str | None = None):
        """The layer called ``name`` (of ``kind``, if given), or None."""
        pool = self.layers_of(kind) if kind else list(self.viewer.layers)
        return next((ly for ly in pool if ly.name == name), None)

    def labels_layer(self, exclude: Iterable[str] = ()):
        """The labels layer being worked on: the selected one, else the newest."""
        labels = self.layers_of("labels", exclude)
        active = self.viewer.layers.selection.active
        if active is not None and active in labels:  # ==, not is: plugins get layer proxies
            return active
        return labels[-1] if labels else None

    @staticmethod
    def case_of(layer: Any) -> SpineCase | None:
        """The spine case a layer shows, or None (a layer napari-spine did not open)."""
        return case_from_layer(layer) if layer is not None else None

    def current_case(self) -> SpineCase | None:
        """The case of the selected layer, else of the newest layer that has one."""
        active = self.viewer.layers.selection.active
        if (c := self.case_of(active)) is not None:
            return c
        for ly in reversed(list(self.viewer.layers)):
            if (c := case_from_layer(ly)) is not None:
                return c
        return None

    def image_layer(self, case: SpineCase | None = None):
        """The newest image layer of ``case`` (default: the current case; any when none)."""
        case = case if case is not None else self.current_case()
        for ly in reversed(self.layers_of("image")):
            if case is None or case_from_layer(ly) is case:
                return ly
        return None

    def landmarks_layer(self, case: SpineCase | None):
        """The points layer with structure-tagged landmarks of ``case`` (any case when None)."""
        for ly in self.layers_of("points"):
            if "structure_id" in ly.features and (case is None or case_from_layer(ly) is case):
                return ly
        return None

    # -- landmarks -------------------------------------------------------------------------
    @staticmethod
    def landmarks_of(points: Any) -> Landmarks:
        """A points layer's landmarks (voxel coordinates, structure ids, names)."""
        return Landmarks(np.asarray(points.data), np.asarray(points.features["structure_id"]),
                         tuple(str(n) for n in points.features["name"]))

    @staticmethod
    def show_landmarks(points: Any, lm: Landmarks) -> None:
        """Give a points layer the structures and names of ``lm`` (same points, relabelled)."""
        feats = points.features.copy()
        feats["structure_id"] = lm.structure_ids
        feats["name"] = list(lm.names)
        feats["structure"] = [ontology.name_of(i) for i in lm.structure_ids]
        points.features = feats
        points.face_color = [ontology.color_of(i) if i in ontology.BY_ID else (1, 1, 1, 1)
                             for i in lm.structure_ids]

    @staticmethod
    def set_landmarks(points: Any, lm: Landmarks) -> None:
        """Make a points layer show ``lm``: its points (moved, added or removed), structures
        and names."""
        if points.data.shape != lm.coords.shape or not np.array_equal(points.data, lm.coords):
            points.data = lm.coords
        Workspace.show_landmarks(points, lm)

    # -- changing what is shown ----------------------------------------------------------
    def may_replace(self, keep: bool = False) -> bool:
        """Whether the shown case may make way for the next (the annotator is asked about
        unsaved edits on its layers); always True with ``keep`` (nothing is replaced)."""
        return keep or may_leave(ly for ly in self.loaded if ly in self.viewer.layers)

    def show_cases(self, cases: Sequence[SpineCase], *, keep: bool = False) -> list:
        """Show ``cases``' layers; they replace the previously shown case's unless ``keep``.

        When the new layers match the previous ones kind for kind, the data is put into the
        existing layers (creating napari layers and their GL visuals costs most of a switch).
        """
        specs = [spec for case in cases
                 for spec in case_to_layer_data(case, image_name=f"{case.case_id} {case.modality}")]
        if not keep and self._reuse(specs):
            return list(self.loaded)
        if not keep:
            self.remove_loaded()
        added = [getattr(self.viewer, f"add_{kind}")(data, **kwargs) for data, kwargs, kind in specs]
        self.loaded.extend(added)
        return added

    def remove_loaded(self) -> None:
        """Take the layers of the shown case out of the viewer."""
        for layer in self.loaded:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.loaded = []

    def _reuse(self, specs: list[tuple]) -> bool:
        layers = self.loaded
        if len(layers) != len(specs) or not all(
            kind in _KINDS and isinstance(ly, _layer_class(kind)) and ly in self.viewer.layers
            for ly, (_, _, kind) in zip(layers, specs, strict=True)
        ):
            return False
        for ly, (data, kw, kind) in zip(layers, specs, strict=True):
            ly.scale, ly.translate = kw["scale"], kw["translate"]
            ly.data = data
            ly.metadata = kw["metadata"]
            ly.name = kw["name"]
            if kind == "image":
                lo, hi = kw["contrast_limits"]
                rlo, rhi = ly.contrast_limits_range
                ly.contrast_limits_range = (min(lo, rlo), max(hi, rhi))
                ly.contrast_limits = kw["contrast_limits"]
            elif kind == "labels":
                ly.features = kw["features"]
                # the undo history belongs to the previous case: toggling editability is
                # napari's public way to clear it (it also leaves paint mode)
                ly.editable = False
                ly.editable = True
            else:  # points and outlines: colours follow the structures of the new case
                ly.features = kw["features"]
                for key in ("face_color", "edge_color"):
                    if key in kw:
                        setattr(ly, key, kw[key])
        return True

    def swap_case(self, case: SpineCase, new: SpineCase) -> None:
        """Every layer of ``case`` now belongs to ``new``; its labels layer shows new's labels."""
        for ly in self.viewer.layers:
            if case_from_layer(ly) is case:
                entry = dict(ly.metadata[META_KEY])
                entry["case"] = new
                ly.metadata = {**ly.metadata, META_KEY: entry}
                if entry.get("role") == "labels":
                    ly.data = np.asarray(new.labels)

    def put_labels(self, name: str, data: np.ndarray, like: Any, **kwargs: Any):
        """Show ``data`` in the labels layer ``name`` (made on ``like``'s grid if missing)."""
        existing = self.layer_named(name, "labels")
        if existing is not None:
            existing.data = data
            return existing
        if getattr(like, "units", None) is not None:
            kwargs.setdefault("units", like.units)  # the same units, or napari warns they differ
        return self.viewer.add_labels(data, name=name, scale=like.scale, translate=like.translate,
                                      **kwargs)

    def centre_on(self, layer: Any, data_point: Sequence[float]) -> tuple[float, ...]:
        """Show the slice through a voxel of ``layer`` and centre the view on it."""
        return center_view_on(self.viewer, layer, data_point)
