"""The "Three planes" dock: the axial and coronal canvases beside napari's sagittal one
(:class:`~napari_spine._napari._planes.LinkedPlanes`), and the buttons to leave them, to
render napari's canvas in 3-D and to hide the crosshair."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QCheckBox, QPushButton, QVBoxLayout, QWidget

from .._planes import LinkedPlanes, planes_of
from ._common import note, side_by_side

__all__ = ["ThreePlanesWidget", "planes_button", "toggle_three_planes"]

_DOCK_NAME = "Three planes"


def toggle_three_planes(viewer: Any) -> bool:
    """Show the three-plane layout, or go back to the single view when it is shown.

    Returns whether the three planes are shown afterwards."""
    widget = next((w for w in dict(getattr(viewer.window, "dock_widgets", {})).values()
                   if isinstance(w, ThreePlanesWidget)), None)
    if widget is None:
        viewer.window.add_plugin_dock_widget("napari-spine", _DOCK_NAME)
        return planes_of(viewer) is not None
    if widget.planes is not None:
        widget.single_view()
        return False
    return widget.link()


def planes_button(viewer) -> QPushButton:
    """A "Three planes" button: sagittal, axial and coronal views side by side, linked (again:
    back to the single view)."""
    b = QPushButton("Three planes")
    b.setToolTip("Sagittal, axial and coronal views of the same layers, with a crosshair; "
                 "press again for the single large view")

    b.clicked.connect(lambda: toggle_three_planes(viewer))
    return b


def place_beside_canvas(dock: Any) -> None:
    """Move ``dock`` between napari's canvas and the other docks on the right, full height
    (napari docks a plugin's widget below the others), about a third of the window wide."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QDockWidget, QMainWindow

    window = dock.parent() if dock is not None else None
    if not isinstance(window, QMainWindow) or not isinstance(dock, QDockWidget):
        return
    right = Qt.DockWidgetArea.RightDockWidgetArea
    others = [d for d in window.findChildren(QDockWidget)
              if d is not dock and d.isVisible() and window.dockWidgetArea(d) == right]
    if window.dockWidgetArea(dock) != right or not others:
        return
    for other in others:  # the first keeps its place: the others move right of this dock
        window.splitDockWidget(dock, other, Qt.Orientation.Horizontal)
    window.resizeDocks([dock], [max(300, window.width() // 3)], Qt.Orientation.Horizontal)


class ThreePlanesWidget(QWidget):
    """Axial and coronal views linked to napari's canvas (which shows the sagittal plane)."""

    def __init__(self, napari_viewer: Any):
        super().__init__()
        self.viewer = napari_viewer
        self.status = note()
        self.planes: LinkedPlanes | None = None
        self._placed = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.single_btn = QPushButton("Single view")
        self.single_btn.setToolTip("Back to napari's one large view")
        self.single_btn.clicked.connect(self.single_view)
        self.three_d_btn = QPushButton("3-D")
        self.three_d_btn.setToolTip("Render napari's canvas in 3-D (again: back to sagittal)")
        self.three_d_btn.setCheckable(True)
        self.three_d_btn.clicked.connect(self.toggle_3d)
        self.cross_box = QCheckBox("Crosshair")
        self.cross_box.setChecked(True)
        self.cross_box.setToolTip("Click in any view, or move with Shift held, to move it")
        self.cross_box.toggled.connect(lambda on: self.planes and self.planes.show_crosshair(on))
        lay.addWidget(side_by_side(self.single_btn, self.three_d_btn, self.cross_box))
        self.views = QVBoxLayout()
        lay.addLayout(self.views, 1)
        lay.addWidget(self.status)
        self.link()

    def link(self) -> bool:
        """Open the axial and coronal views (and show the dock); False for a 2-D case."""
        if self.planes is not None:
            return True
        if self.viewer.dims.ndim != 3 and len(self.viewer.layers):
            self.status.setText("The three planes need a 3-D volume; this case is 2-D.")
            return False
        self.status.setText("")
        self.planes = LinkedPlanes(self.viewer)
        self.planes.show_crosshair(self.cross_box.isChecked())
        self.views.addWidget(self.planes.widget)
        dock = self.parent()
        if dock is not None and not dock.isVisible():
            dock.show()
        return True

    def toggle_3d(self) -> None:
        """napari's canvas in 3-D, or back to the sagittal plane."""
        if self.planes is not None:
            self.three_d_btn.setChecked(self.planes.toggle_3d() == 3)

    def single_view(self) -> None:
        """Close the extra views: napari's canvas alone again, as large as the window allows."""
        self._close_planes()
        self.three_d_btn.setChecked(False)
        dock = self.parent()
        if dock is not None:
            dock.hide()

    def _close_planes(self, *_: Any) -> None:
        if self.planes is not None:
            planes, self.planes = self.planes, None
            planes.close()
            planes.widget.setParent(None)
            planes.widget.deleteLater()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """The first time it is docked, the dock takes the full height beside the canvas."""
        super().showEvent(event)
        if not self._placed:
            self._placed = True
            place_beside_canvas(self.parent())
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, self._fit)  # once the narrower canvas has its new size

    def _fit(self) -> None:
        """Fit napari's canvas to its new width, still centred on the shared point."""
        if self.planes is not None:
            self.viewer.reset_view()
            self.planes.centre(self.viewer.dims.point)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Closing the dock unlinks the views."""
        self._close_planes()
        super().closeEvent(event)
