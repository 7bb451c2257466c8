"""The "Landmarks" part of the correction panel: make a landmarks layer for a case that has
none, load landmarks from a file (the project's JSON / CSV, TPTBox POI JSON). The points
are part of the correction history (a shift renames them, undo restores them); saving is
in the Save part."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import QFileDialog, QGroupBox, QVBoxLayout

from ._common import buttons, note, side_by_side

__all__ = ["LandmarksBox"]


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
