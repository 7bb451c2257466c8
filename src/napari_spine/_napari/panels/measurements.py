"""The "Spine measurements" dock widget: body and disc heights, height loss, bone intensity
and spinal angles of the labels in the viewer, drawn on the views and exported as CSV/JSON.

A thin view over :mod:`napari_spine.measurements`: the measuring runs in a background
:class:`Task`; the lines are a shapes layer on the labels layer's grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QProgressBar,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...measurements import Measurements, measure_case, measure_labels
from .._workers import Task
from .._workspace import Workspace
from ._common import buttons, note, scrolling, side_by_side
from ._rulers_box import RulersBox

if TYPE_CHECKING:
    import napari

LINES_LAYER = "measurement lines"
BODY_COLUMNS = (("level", "Level"), ("height_anterior_mm", "Ant. mm"), ("height_middle_mm", "Mid. mm"),
                ("height_posterior_mm", "Post. mm"), ("height_loss", "Loss"), ("genant_grade", "Grade"),
                ("shape", "Shape"), ("volume_ml", "mL"), ("hu_mean", "HU"), ("notes", "Notes"))
DISC_COLUMNS = (("level", "Disc"), ("height_anterior_mm", "Ant. mm"), ("height_middle_mm", "Mid. mm"),
                ("height_posterior_mm", "Post. mm"), ("disc_height_index", "DHI"), ("notes", "Notes"))
ANGLE_COLUMNS = (("angle", "Angle"), ("angle_deg", "Degrees"), ("from", "From"), ("to", "To"),
                 ("plane", "Plane"))


def _table(columns) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels([title for _, title in columns])
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.verticalHeader().setVisible(False)
    t.setMinimumHeight(180)
    return t


def _fill(table: QTableWidget, rows: list[dict], columns) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, (key, _) in enumerate(columns):
            v = row.get(key)
            table.setItem(i, j, QTableWidgetItem("" if v is None else str(v)))
    table.resizeColumnsToContents()


class MeasurementsWidget(QWidget):
    """Measures the current labels layer of a spine case and shows the tables."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.ws = Workspace(napari_viewer)
        self.result: Measurements | None = None
        self._layer = None
        self.status = note("Measure the labels of the current case: heights along each body's own "
                           "axis at 85/50/15 % of its depth, Genant grade, discs and angles.")
        self.progress = QProgressBar()
        layout = scrolling(self)
        group = QGroupBox("Measurements")
        lay = QVBoxLayout(group)
        run = buttons(self, [("measure_btn", "Measure", self.start),
                             ("contours_btn", "Measure contours", lambda: self.start(source="landmarks"))])
        out = buttons(self, [("csv_btn", "Export CSV…", self._csv_dialog),
                             ("json_btn", "Export JSON…", self._json_dialog)])
        self.tabs = QTabWidget()
        self.bodies, self.discs, self.angles = (_table(BODY_COLUMNS), _table(DISC_COLUMNS),
                                                 _table(ANGLE_COLUMNS))
        for t, title in ((self.bodies, "Bodies"), (self.discs, "Discs"), (self.angles, "Angles")):
            self.tabs.addTab(t, title)
        self.bodies.cellDoubleClicked.connect(self._go_to_row)
        for w in (side_by_side(*run), self.progress, self.status, self.tabs, side_by_side(*out)):
            lay.addWidget(w)
        layout.addWidget(group)
        self.rulers = RulersBox(self.ws, _table, _fill)
        layout.addWidget(self.rulers)
        layout.addStretch(1)
        self.task = Task(progress=self.progress, status=self.status, buttons=(*run, *out))
        for b in out:
            b.setEnabled(False)

    # -- measuring ---------------------------------------------------------------------
    def measure(self, source: str = "mask") -> Measurements:
        """Measure the current labels layer (or the case's contours), synchronously."""
        case = self.ws.current_case()
        if case is None:
            raise ValueError("no spine case in the viewer")
        if source == "landmarks":
            return measure_case(case, source="landmarks")
        layer = self.ws.labels_layer()
        if layer is None:
            raise ValueError("no labels layer to measure")
        self._layer = layer
        case = self.ws.case_of(layer) or case
        labels = np.asarray(layer.data)
        if labels.shape != case.shape:
            raise ValueError(f"the labels layer {layer.name!r} is not on the case's grid")
        return measure_labels(labels, case.affine, case.image, case.modality == "CT", case.key,
                              case.structures_present)

    def start(self, *_: Any, source: str = "mask", sync: bool = False):
        """Measure in the background (``sync``: now); the tables and lines follow."""
        return self.task.start(lambda: self.measure(source), desc="Measuring", done=self._show, sync=sync)

    def _show(self, m: Measurements) -> str:
        self.result = m
        _fill(self.bodies, m.bodies, BODY_COLUMNS)
        _fill(self.discs, m.discs, DISC_COLUMNS)
        _fill(self.angles, m.angles, ANGLE_COLUMNS)
        for b in (self.csv_btn, self.json_btn):
            b.setEnabled(True)
        self.draw_lines(m)
        graded = [r["level"] for r in m.bodies if r.get("genant_grade")]
        return (f"{len(m.bodies)} bodies, {len(m.discs)} discs, {len(m.angles)} angles from the "
                f"{m.source}" + (f"; height loss graded at {', '.join(graded)}" if graded else ""))

    def draw_lines(self, m: Measurements):
        """Show the measured heights as lines (one shapes layer, replaced on each run)."""
        old = self.ws.layer_named(LINES_LAYER)
        if old is not None:
            self.viewer.layers.remove(old)
        if not m.lines or self._layer is None:
            return None
        like = self._layer
        extra = {"units": like.units} if getattr(like, "units", None) is not None else {}
        data = [np.asarray(line["voxels"]) for line in m.lines]
        colors = ["#ffd24a" if line["kind"] == "body" else "#4ad2ff" for line in m.lines]
        return self.viewer.add_shapes(
            data, shape_type="line", name=LINES_LAYER, edge_color=colors, edge_width=0.6,
            scale=like.scale, translate=like.translate,
            features={"measure": [line["measure"] for line in m.lines], "mm": [line["value"] for line in m.lines]},
            text={"string": "{mm:.1f}", "size": 8, "color": "white"}, **extra)

    def _go_to_row(self, row: int, _col: int) -> None:
        if self.result is None or self._layer is None or row >= len(self.result.bodies):
            return
        sid = self.result.bodies[row]["structure_id"]
        idx = np.argwhere(np.asarray(self._layer.data) == sid)
        if len(idx):
            self.ws.centre_on(self._layer, idx.mean(0))

    # -- export ------------------------------------------------------------------------
    def export_to(self, path: str | Path) -> Path:
        """Write the last result as CSV or JSON (by extension)."""
        if self.result is None:
            raise ValueError("nothing measured yet")
        path = Path(path)
        return self.result.write_json(path) if path.suffix.lower() == ".json" else self.result.write_csv(path)

    def _ask(self, title: str, filters: str, ext: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, f"measurements{ext}", filters)
        if not path:
            return None
        return path if path.lower().endswith(ext) else path + ext

    def _csv_dialog(self) -> None:
        path = self._ask("Export measurements", "CSV (*.csv)", ".csv")
        if path:
            self.task.start(lambda: self.export_to(path), desc="Writing CSV", done=lambda p: f"Saved {p.name}")

    def _json_dialog(self) -> None:
        path = self._ask("Export measurements", "JSON (*.json)", ".json")
        if path:
            self.task.start(lambda: self.export_to(path), desc="Writing JSON", done=lambda p: f"Saved {p.name}")
