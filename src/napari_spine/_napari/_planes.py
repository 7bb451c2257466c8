"""Three linked planes: napari's canvas shows the sagittal plane, two more napari canvases
(``ViewerModel`` + ``QtViewer``, as in napari's multiple-viewer example) show the axial and
coronal planes of the same layers.

- one point in space is shared: the slice of each view, and a crosshair drawn in each;
  a click (or moving the mouse with Shift held) in any view moves it there;
- orientation letters (R/L, S/I, A/P, from :func:`napari_spine.display.edge_letters`) at
  the edges of each view and the plane's name, updated when the axes are rolled or the
  camera flipped;
- each canvas draws in world millimetres, so the aspect follows the voxel size;
- painting works in every view (:mod:`._mirror`: the layers are twins sharing one array);
- :meth:`LinkedPlanes.centre` centres every view on a point (the panels' *go to*).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..display import AXIS_LABELS, PLANES, edge_letters, plane_of

__all__ = ["LinkedPlanes", "planes_of"]

_LINKED: dict[int, LinkedPlanes] = {}
_LETTER_COLOUR = (1.0, 0.85, 0.2, 1.0)
_CROSS_COLOUR = (0.3, 0.9, 1.0, 0.75)


def planes_of(viewer: Any) -> LinkedPlanes | None:
    """The open three-plane layout of ``viewer``, or None."""
    return _LINKED.get(id(getattr(viewer, "__wrapped__", viewer)))


def _order_for(plane: str) -> tuple[int, int, int]:
    rows, cols = PLANES[plane]
    return ({0, 1, 2} - {rows, cols}).pop(), rows, cols


class _Canvas:
    """One view's extras, drawn straight on its vispy canvas: the orientation letters and the
    plane's name (two text visuals in the view's pixels, kept at the edges when it is
    resized; one visual for all letters costs a fraction of a napari overlay each) and the
    crosshair (a line in the scene, in world millimetres)."""

    _EDGE_ORDER = ("top", "bottom", "left", "right")

    def __init__(self, model: Any, canvas: Any):
        from vispy.scene.visuals import Line, Text

        self.model, self.view = model, canvas.view
        self.texts = dict.fromkeys(self._EDGE_ORDER, "")
        self.plane = ""
        self.edges = Text(text=[" "] * 4, pos=np.zeros((4, 2)), color=_LETTER_COLOUR,
                          font_size=14, bold=True, parent=self.view)
        self.title = Text(text=" ", pos=(8, 14), color=(1, 1, 1, 0.9), font_size=11,
                          anchor_x="left", parent=self.view)
        for visual in (self.edges, self.title):
            visual.order = 10_001
        self.line = Line(pos=np.zeros((4, 2)), connect="segments", color=_CROSS_COLOUR, width=1,
                         parent=self.view.scene)
        self.line.order = 10_000  # above every layer
        self.line.set_gl_state("translucent", depth_test=False)
        self.view.events.resize.connect(self._place)
        self._place()

    def _place(self, *_: Any) -> None:
        w, h = (float(x) for x in self.view.size)
        m = 14.0
        self.edges.pos = np.array([[w / 2, m], [w / 2, h - m], [m, h / 2], [w - m, h / 2]])
        self.title.pos = (8.0, m)

    def letters(self) -> dict[str, str]:
        """The letters now shown at the four edges (empty strings when not a spine plane)."""
        return dict(self.texts)

    def update(self, crosshair: bool) -> None:
        """Letters and crosshair for the model's current axes, camera and point."""
        model = self.model
        displayed = tuple(model.dims.displayed)
        flat = model.dims.ndisplay == 2 and model.dims.ndim == 3
        plane = plane_of(displayed) if flat else None
        if plane is not None:
            orient = model.scene.camera.orientation2d
            letters = edge_letters(displayed, rows_down=str(orient[0]) == "down",
                                   columns_right=str(orient[1]) == "right")
        else:
            letters = dict.fromkeys(self._EDGE_ORDER, "")
        if letters != self.texts or (plane or "") != self.plane:
            self.texts, self.plane = letters, (plane or "")
            self.edges.text = [letters[e] or " " for e in self._EDGE_ORDER]
            self.title.text = self.plane.capitalize() or " "
        self.line.visible = bool(crosshair and plane is not None and len(model.layers))
        if self.line.visible:
            r, c = displayed
            point = model.dims.point
            (lo_r, lo_c), (hi_r, hi_c) = model.layers.extent.world[:, [r, c]]
            pad = 0.05 * max(hi_r - lo_r, hi_c - lo_c, 1.0)
            self.line.set_data(pos=np.array([
                [point[c], lo_r - pad], [point[c], hi_r + pad],
                [lo_c - pad, point[r]], [hi_c + pad, point[r]],
            ], dtype=np.float32))

    def close(self) -> None:
        """Take the letters, title and crosshair off the canvas."""
        try:
            self.view.events.resize.disconnect(self._place)
        except (TypeError, ValueError, RuntimeError):
            pass
        for visual in (self.edges, self.title, self.line):
            visual.parent = None


class LinkedPlanes:
    """The axial and coronal views of ``viewer``'s layers, linked to its sagittal canvas.

    ``widget`` holds the two extra canvases (the caller docks it). Close with :meth:`close`.
    """

    def __init__(self, viewer: Any):
        from napari.components.viewer_model import ViewerModel
        from napari.qt import QtViewer
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QSplitter

        from ._mirror import Mirror

        self.viewer = getattr(viewer, "__wrapped__", viewer)
        self.crosshair = True
        self._syncing = False
        self.models: dict[str, Any] = {}
        self.qt_viewers: dict[str, Any] = {}
        self.mirrors: dict[str, Mirror] = {}
        self.widget = QSplitter(Qt.Orientation.Vertical)
        self.canvases = {"main": _Canvas(self.viewer, self.viewer.window._qt_viewer.canvas)}
        for plane in ("axial", "coronal"):
            model = ViewerModel(title=plane)
            self.mirrors[plane] = Mirror(self.viewer, model)
            if model.dims.ndim == 3:
                model.dims.order = _order_for(plane)
            qt = QtViewer(model)
            self.canvases[plane] = _Canvas(model, qt.canvas)
            self.widget.addWidget(qt)
            self.models[plane], self.qt_viewers[plane] = model, qt
        for model in self._all_models():
            model.dims.events.current_step.connect(self._on_step)
            model.dims.events.order.connect(self._refresh)
            model.dims.events.ndisplay.connect(self._refresh)
            model.scene.camera.events.orientation.connect(self._refresh)
            model.layers.events.inserted.connect(self._refresh)
            model.mouse_drag_callbacks.append(self._on_drag)
            model.mouse_move_callbacks.append(self._on_move)
        _LINKED[id(self.viewer)] = self
        self._watch_close(self.viewer.window._qt_viewer)
        self.arrange()

    def _watch_close(self, main_qt: Any) -> None:
        """Unlink when napari's own canvas closes (the viewer is closed with the views open)."""
        from ._closing import CloseFilter

        def unlink() -> bool:
            self.close()
            return True  # the close goes on

        self._close_filter = CloseFilter(self.widget, unlink)
        main_qt.installEventFilter(self._close_filter)

    def _all_models(self) -> list:
        return [self.viewer, *self.models.values()]

    # -- layout ---------------------------------------------------------------------------
    def arrange(self) -> None:
        """Main view sagittal, the others axial and coronal, all on the current point, and
        the extra views fitted to the data."""
        if self.viewer.dims.ndim == 3:
            self.viewer.dims.order = _order_for("sagittal")
        for plane, model in self.models.items():
            if model.dims.ndim == 3:
                model.dims.order = _order_for(plane)
            model.reset_view()
        for model in self._all_models():
            if model.dims.ndim == 3:  # the sliders say which way they move, not "-3"
                model.dims.axis_labels = AXIS_LABELS
        self._on_step()

    def toggle_3d(self) -> int:
        """Switch napari's canvas between its sagittal plane and a 3-D rendering."""
        self.viewer.dims.ndisplay = 3 if self.viewer.dims.ndisplay == 2 else 2
        return self.viewer.dims.ndisplay

    # -- one point for all ---------------------------------------------------------------
    def set_point(self, world) -> None:
        """Move the shared point (slices and crosshairs) to ``world`` (mm, display axes)."""
        world = np.asarray(world, dtype=float)
        self.viewer.dims.set_point(range(len(world)), world)  # _on_step carries it across

    def centre(self, world) -> None:
        """Put the shared point at ``world`` and centre every view on it."""
        self.set_point(world)
        for model in self._all_models():
            if model.dims.ndisplay == 2:
                r, c = model.dims.displayed
                model.scene.camera.center = (float(world[r]), float(world[c]))

    def _on_step(self, event: Any = None) -> None:
        if self._syncing:
            return
        source = getattr(event, "source", None) or self.viewer.dims
        self._syncing = True
        try:
            for model in self._all_models():
                if model.dims is not source and model.dims.ndim == source.ndim:
                    model.dims.set_point(range(source.ndim), source.point)
        finally:
            self._syncing = False
        self._refresh()

    def _refresh(self, *_: Any) -> None:
        for canvas in self.canvases.values():
            canvas.update(self.crosshair)

    def _on_drag(self, model, event):
        if event.button != 1:
            return
        yield
        moved = False
        while event.type == "mouse_move":
            moved = True
            yield
        if not moved:  # a click, not a drag: the point follows
            self.set_point(event.position)

    def _on_move(self, model, event) -> None:
        if "Shift" in event.modifiers:
            self.set_point(event.position)

    def show_crosshair(self, on: bool) -> None:
        """Show or hide the crosshair in every view."""
        self.crosshair = bool(on)
        self._refresh()

    def close(self) -> None:
        """Unlink the views and drop the extra canvases and their layers (again: nothing)."""
        if _LINKED.get(id(self.viewer)) is not self or not self.models:
            return
        _LINKED.pop(id(self.viewer), None)
        for model in self._all_models():
            for emitter, cb in ((model.dims.events.current_step, self._on_step),
                                (model.dims.events.order, self._refresh),
                                (model.dims.events.ndisplay, self._refresh),
                                (model.scene.camera.events.orientation, self._refresh),
                                (model.layers.events.inserted, self._refresh)):
                try:
                    emitter.disconnect(cb)
                except (TypeError, ValueError, RuntimeError):
                    pass
            for callbacks, cb in ((model.mouse_drag_callbacks, self._on_drag),
                                  (model.mouse_move_callbacks, self._on_move)):
                if cb in callbacks:
                    callbacks.remove(cb)
        for canvas in self.canvases.values():
            canvas.close()
        for plane, mirror in self.mirrors.items():
            mirror.close()
            self.models[plane].layers.clear()
            self.qt_viewers[plane].close()
            self.qt_viewers[plane].deleteLater()
        self.mirrors, self.models, self.qt_viewers, self.canvases = {}, {}, {}, {}
