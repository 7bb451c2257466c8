"""The "Rulers" part of the Spine measurements panel: distance, angle and Cobb tools on a
shapes layer of the case, their values in mm and degrees from the case geometry
(:mod:`napari_spine.measurements.rulers`), listed and shown beside each ruler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import QGroupBox, QVBoxLayout

from ...measurements.rulers import KINDS, rulers_from_shapes, shape_texts, shapes_of
from .._layers import META_KEY
from .._workspace import Workspace
from ._common import buttons, note, side_by_side

__all__ = ["RULER_COLUMNS", "RulersBox", "rulers_of"]

RULER_COLUMNS = (("kind", "Ruler"), ("value", "Value"), ("unit", "Unit"))
#: the drawing tool of each kind (napari's shapes modes)
_TOOLS = {"distance": "add_line", "angle": "add_path", "cobb": "add_line"}
_HINTS = {"distance": "Click two points (drag) for a distance.",
          "angle": "Click three points, the vertex second; double-click to finish.",
          "cobb": "Draw the two endplate lines, one after the other."}


def rulers_of(ws: Workspace, case: Any) -> list | None:
    """The rulers drawn for ``case``; None when it has no rulers layer."""
    layer = find_rulers_layer(ws, case)
    if layer is None:
        return None
    if not len(layer.data):
        return []
    return rulers_from_shapes(list(layer.data), list(layer.features["ruler"]))


def find_rulers_layer(ws: Workspace, case: Any):
    """The shapes layer holding ``case``'s rulers, or None."""
    for ly in ws.layers_of("shapes"):
        if "ruler" in ly.features and ws.case_of(ly) is case:
            return ly
    return None


class RulersBox(QGroupBox):
    """Buttons that arm a ruler tool, and the list of the case's rulers with their values."""

    def __init__(self, ws: Workspace, table_factory, fill):
        super().__init__("Rulers")
        self.ws, self._fill = ws, fill
        self.layer = None
        self.message = note("Distance, angle and Cobb rulers, in mm and degrees from the case "
                            "geometry; saved with the landmarks.")
        tools = buttons(self, [(f"{kind}_btn", kind.capitalize(), self._arm(kind)) for kind in KINDS])
        tools += buttons(self, [("load_btn", "Load…", self._load_dialog)])
        self.load_btn.setToolTip("Draw the rulers saved with a case's landmarks (JSON or CSV) again")
        self.table = table_factory(RULER_COLUMNS)
        self.table.setMinimumHeight(100)
        lay = QVBoxLayout(self)
        for w in (side_by_side(*tools), self.message, self.table):
            lay.addWidget(w)

    def _arm(self, kind: str):
        return lambda: self.arm(kind)

    def arm(self, kind: str):
        """Make the case's rulers layer (if needed) and switch on the tool for ``kind``."""
        layer = self.rulers_layer(create=True)
        if layer is None:
            self.message.setText("Open a spine case first: rulers measure on its grid.")
            return None
        layer.feature_defaults = {"ruler": kind, "text": ""}
        self.ws.viewer.layers.selection.active = layer
        layer.mode = _TOOLS[kind]
        self.message.setText(_HINTS[kind])
        return layer

    def rulers_layer(self, create: bool = False):
        """The current case's rulers layer (made on its labels' grid when ``create``)."""
        case = self.ws.current_case()
        if case is None or len(case.shape) != 3:
            return None
        layer = find_rulers_layer(self.ws, case)
        if layer is None and create:
            like = self.ws.labels_layer() or self.ws.image_layer(case)
            extra = {"units": like.units} if getattr(like, "units", None) is not None else {}
            layer = self.ws.viewer.add_shapes(
                ndim=3, name=f"{case.case_id} rulers", scale=like.scale, translate=like.translate,
                edge_color="#ffe14a", edge_width=1.0, face_color="transparent",
                features={"ruler": np.array([], dtype=object), "text": np.array([], dtype=object)},
                text={"string": "{text}", "size": 10, "color": "#ffe14a", "anchor": "upper_left"},
                metadata={META_KEY: {"case": case, "role": "rulers", "case_id": case.case_id}},
                **extra)
        if layer is not None and (self.layer is None or layer != self.layer):  # proxies: ==
            layer.events.data.connect(self._on_data)
            self.layer = layer
        return layer

    def load(self, path) -> int:
        """Add the rulers saved with landmarks at ``path`` to the current case (placed by
        their RAS positions); returns how many were added."""
        from ...io.export import read_rulers

        layer = self.rulers_layer(create=True)
        if layer is None:
            self.message.setText("Open a spine case first: rulers measure on its grid.")
            return 0
        try:
            rulers = read_rulers(path, self.ws.case_of(layer))
        except (OSError, ValueError) as exc:  # the error family names the file
            self.message.setText(f"Rulers not loaded: {exc}")
            return 0
        for points, shape_type, kind in shapes_of(rulers):
            layer.feature_defaults = {"ruler": kind, "text": ""}
            layer.add(points, shape_type=shape_type)
        self.message.setText(f"{len(rulers)} rulers loaded from {Path(path).name}")
        return len(rulers)

    def _load_dialog(self) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Load rulers", "", "Landmarks (*.json *.csv)")
        if path:
            self.load(path)

    def _on_data(self, event: Any = None) -> None:
        action = str(getattr(getattr(event, "action", None), "value", ""))
        if action.endswith("ing"):  # napari's "adding" / "changing": the change is not made yet
            return
        self.update_values()

    def update_values(self) -> list[dict]:
        """Recompute every ruler's value; the texts on the view and the list follow."""
        layer, rows = self.layer, []
        if layer is None:
            return rows
        case = self.ws.case_of(layer)
        shapes, kinds = list(layer.data), [str(k) for k in layer.features["ruler"]]
        if case is None or not shapes:
            self._fill(self.table, rows, RULER_COLUMNS)
            return rows
        feats = layer.features.copy()
        feats["text"] = shape_texts(shapes, kinds, case.affine)
        layer.features = feats
        layer.refresh_text()
        for r in rulers_from_shapes(shapes, kinds):
            v = r.value(case.affine)
            rows.append({"kind": r.kind.capitalize(), "value": "" if v is None else f"{v:.1f}",
                         "unit": r.unit})
        self._fill(self.table, rows, RULER_COLUMNS)
        return rows
