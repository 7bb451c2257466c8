"""The "Landmarks" part of the correction panel: make a landmarks layer for a case that has
none, load landmarks from a file (the project's JSON / CSV, TPTBox POI JSON). The points
are part of the correction history (a shift renames them, undo restores them); saving is
in the Save part."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import QFileDialog, QGroupBox, QVBoxLayout

from ...anatomy import ontology
from ._common import buttons, note, side_by_side

__all__ = ["LandmarksBox", "LandmarksMixin"]


class LandmarksBox(QGroupBox):
    """New / Load landmarks; says which layer holds the case's landmarks."""

    def __init__(self, new: Callable[[], Any], load: Callable[[str], Any]):
        super().__init__("Landmarks")
        self._load = load
        new_btn, load_btn = buttons(self, (
            ("new_btn", "New landmarks layer", lambda: new()),
            ("load_btn", "Load landmarks...", lambda: self._choose())))
        new_btn.setToolTip("A points layer for this case: points added get the structure being painted")
        load_btn.setToolTip("napari-spine landmark JSON / CSV, or a TPTBox POI JSON (placed through its grid)")
        self.state = note(style="color: #9aa0a6;")
        self.message = note(style="color: #ffae42;")
        lay = QVBoxLayout(self)
        lay.addWidget(side_by_side((new_btn, 1), (load_btn, 1)))
        lay.addWidget(self.state)
        lay.addWidget(self.message)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load landmarks", "", "Landmarks (*.json *.csv)")
        if path:
            self._load(path)

    def show_layer(self, points: Any) -> None:
        """Name the case's landmarks layer (or say there is none)."""
        self.state.setText(f"{points.name}: {len(points.data)} points" if points is not None
                           else "This case has no landmarks layer.")


class LandmarksMixin:
    """A landmarks layer for the case, landmarks from a file; mixed into the correction panel."""

    def new_landmarks(self, landmarks=None):
        """Give the case a landmarks layer (empty, or ``landmarks``); points added to it get
        the structure being painted. Returns the layer (the existing one when there is one)."""
        from ...case import Landmarks
        from .._layers import landmarks_layer_data

        layer = self.labels_layer()
        case = self.ws.case_of(layer)
        if case is None:
            self.landmarks_box.message.setText("This labels layer does not belong to a spine case.")
            return None
        existing = self.ws.landmarks_layer(case)
        if existing is not None:
            return existing
        lm = landmarks if landmarks is not None else Landmarks(np.empty((0, 3)), np.empty(0, np.int64), ())
        data, kwargs, _ = landmarks_layer_data(case, lm)
        kwargs["scale"], kwargs["translate"] = layer.scale, layer.translate
        if not len(lm):  # napari needs one colour, not an empty list of them, and text columns
            kwargs["features"] = {"name": np.array([], dtype=object), "structure": np.array([], dtype=object),
                                  "structure_id": np.array([], dtype=np.int64)}
            sid = int(layer.selected_label)
            kwargs["face_color"] = np.asarray(ontology.color_of(sid) if sid in ontology.BY_ID else (1, 1, 1, 1))
        points = self.viewer.add_points(data, **kwargs)
        self.viewer.layers.selection.active = layer  # the labels stay the layer being corrected
        self._watch_points()
        self._show_painting()
        return points

    def load_landmarks(self, path: str) -> int:
        """Load landmarks from a file onto the case (a step of the history when the case has
        landmarks already); returns how many points were read (0: not loaded, said why)."""
        from ...io.landmarks import read_landmark_file

        layer = self.labels_layer()
        case = self.ws.case_of(layer)
        s = self.session(layer)
        if case is None or s is None:
            self.landmarks_box.message.setText("This labels layer does not belong to a spine case.")
            return 0
        if self._blocked(s):
            self.landmarks_box.message.setText(self._blocked(s))
            return 0
        try:
            lm = read_landmark_file(path, case)
        except Exception as exc:  # noqa: BLE001 - shown, never raised into Qt
            self.landmarks_box.message.setText(f"Not loaded: {exc}")
            return 0
        points = self.ws.landmarks_layer(case)
        if points is None:
            self.new_landmarks(lm)
        else:
            step = self._record(lambda: s.commit(layer.data, "load landmarks", where=np.empty(0, np.int64),
                                                 landmarks=lm))
            if step is not None:
                self._show_landmarks(lm)
        self.landmarks_box.message.setText(f"Loaded {len(lm)} landmarks from {Path(path).name}")
        self._refresh()
        return len(lm)

