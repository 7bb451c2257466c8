"""The "Spine case" dock widget: what is loaded, contrast presets, structures, levels, export.

A thin view: it reads the viewer through a :class:`Workspace`, calls the core
(:mod:`napari_spine.io.export`, :mod:`napari_spine.anatomy`) and runs exports in a
background :class:`Task` with a progress indicator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ... import geometry
from ...anatomy import ontology
from ...anatomy.levels import identify_levels as number_levels
from ...anatomy.levels import rib_masks, standard_levels
from ...display import CT_WINDOWS, mr_contrast_limits, view_caption, window_limits
from ...io.export import ExportResult, export_labels
from .._layers import META_KEY, labels_colormap, labels_features
from .._workers import Task
from .._workspace import Workspace
from ._common import note, scrolling, side_by_side
from ._dicom_info import dicom_summary, seg_possible
from ._rulers_box import rulers_of
from ._structures import StructureBox
from .planes import planes_button

if TYPE_CHECKING:
    import napari

_CONVENTION = "Sagittal view: superior at the top, anterior on the left."
_NO_CASE = "No spine case loaded. Open a NIfTI file, a DICOM folder or a sample."

class CaseWidget(QWidget):
    """Summary, contrast, structures, levels and export for the spine case in the viewer."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.ws = Workspace(napari_viewer)
        self._last_export: ExportResult | None = None
        self.status = note()
        self.box = StructureBox(self.ws, self.status)
        # the structure list's parts, as the panel's own
        self.structures, self.label_scheme = self.box.list, self.box.scheme
        self.names_from, self.undo_scheme_btn = self.box.names_from, self.box.undo_btn
        layout = scrolling(self)
        for group in (self._case_group(), self._display_group(), self.box, self._levels_group(),
                      self._export_group()):
            layout.addWidget(group)
        layout.addStretch(1)
        self.task = Task(progress=self.progress, status=self.status,
                         buttons=(self.export_btn, self.seg_btn, self.landmarks_btn))
        self.viewer.layers.events.inserted.connect(self._refresh)
        self.viewer.layers.events.removed.connect(self._refresh)
        self.viewer.layers.selection.events.active.connect(self._refresh)
        self.viewer.mouse_move_callbacks.append(self._on_mouse_move)
        self._refresh()

    # -- building ----------------------------------------------------------------------
    def _case_group(self) -> QGroupBox:
        self.summary = note(_NO_CASE)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = note(style="color: #ffae42; font-weight: bold;")
        self.warning.setVisible(False)
        self.cursor = QLabel("Under cursor: -")
        self.cursor.setStyleSheet("font-weight: bold;")
        self.show_ids = QCheckBox("Show patient identifiers")
        self.show_ids.setToolTip("Patient name and ID, accession number and the study/series UIDs "
                                 "of a DICOM case (hidden unless asked)")
        self.show_ids.setVisible(False)
        self.show_ids.toggled.connect(self._refresh)
        g = QGroupBox("Case")
        lay = QVBoxLayout(g)
        self.convention = note(style="color: #9aa0a6;")
        self.viewer.dims.events.order.connect(self._show_convention)
        self.viewer.dims.events.ndisplay.connect(self._show_convention)
        self._show_convention()
        for w in (self.summary, self.show_ids, self.warning, self.convention, self.cursor):
            lay.addWidget(w)
        return g

    def _show_convention(self, *_: Any) -> None:
        dims = self.viewer.dims
        if dims.ndim == 3 and dims.ndisplay == 2:
            self.convention.setText(view_caption(tuple(dims.displayed)))
        else:
            self.convention.setText(_CONVENTION if dims.ndisplay == 2 else "3-D view.")

    def _display_group(self) -> QGroupBox:
        self.window = QComboBox()
        self.window.addItems([*(w.capitalize() for w in CT_WINDOWS), "Auto (0.5-99.5 %)"])
        self.window.setToolTip("CT window (width/level) or automatic MR contrast")
        self.window.activated.connect(lambda _i: self.apply_window(self.window.currentText()))
        g = QGroupBox("Display")
        form = QFormLayout(g)
        form.addRow("Window", self.window)
        form.addRow("Views", planes_button(self.viewer))
        return g

    def _levels_group(self) -> QGroupBox:
        self.anchor = QComboBox()
        self.anchor.addItems(["Automatic", *standard_levels()])
        self.anchor.setToolTip("Level of the topmost vertebral body in the field of view; "
                               "Automatic finds it from the sacrum, the ribs or C2")
        self.levels_btn = QPushButton("Identify levels")
        self.levels_btn.setToolTip("Number 'level not assigned' bodies and discs from the top "
                                   "down into a new labels layer (the original layer is kept)")
        self.levels_btn.clicked.connect(lambda: self.identify_levels())
        self.alt_up, self.alt_down = QPushButton("One level up"), QPushButton("One level down")
        for b, step in ((self.alt_up, -1), (self.alt_down, +1)):
            b.setToolTip("The numbering is a guess: renumber the levels layer one level up / down")
            b.clicked.connect(lambda _c=False, s=step: self.apply_alternative(s))
            b.setVisible(False)
        self._levels: tuple | None = None  # (levels layer, LevelResult) of the last numbering
        g = QGroupBox("Levels")
        lay = QVBoxLayout(g)
        lay.addWidget(side_by_side(QLabel("Top body"), (self.anchor, 1)))
        lay.addWidget(self.levels_btn)
        lay.addWidget(side_by_side(self.alt_up, self.alt_down))
        return g

    def _export_group(self) -> QGroupBox:
        self.scheme = QComboBox()
        self.scheme.addItems(["native", "canonical"])
        self.scheme.setToolTip("native: the label ids of the dataset the case came from; "
                               "canonical: VerSe/TPTBox ids (C1=1 ... L5=24, S1=26, discs +100)")
        self.export_btn = QPushButton("Export labels (NIfTI)...")
        self.export_btn.clicked.connect(self._export_labels_dialog)
        self.landmarks_btn = QPushButton("Export landmarks (JSON/CSV)...")
        self.landmarks_btn.clicked.connect(self._export_landmarks_dialog)
        self.seg_btn = QPushButton("Export DICOM SEG...")
        self.seg_btn.setToolTip("The labels as a DICOM Segmentation that references the series "
                                "they were drawn on (one segment per structure, SNOMED CT codes)")
        self.seg_btn.clicked.connect(self._export_seg_dialog)
        self.seg_btn.setVisible(False)
        self.progress = QProgressBar()
        g = QGroupBox("Export")
        lay = QVBoxLayout(g)
        row = QHBoxLayout()
        row.addWidget(QLabel("Label ids"))
        row.addWidget(self.scheme)
        lay.addLayout(row)
        for w in (self.export_btn, self.seg_btn, self.landmarks_btn, self.progress, self.status):
            lay.addWidget(w)
        return g

    # -- what the viewer shows ------------------------------------------------------------
    def current_case(self):
        """The case of the selected layer (else the newest layer's)."""
        return self.ws.current_case()

    def labels_layer(self):
        """The labels layer the panel describes: the selected one, else the newest."""
        return self.ws.labels_layer()

    def _refresh(self, *_: Any) -> None:
        case = self.ws.current_case()
        if case is None:
            self.summary.setText(_NO_CASE)
            self.warning.setVisible(False)
        else:
            sp = " x ".join(f"{s:.3g}" for s in case.spacing)
            self.summary.setText(
                f"<b>{case.case_id}</b> ({case.dataset}) - {case.modality}<br>"
                f"{case.shape[0]} x {case.shape[1]} x {case.shape[2]} voxels, {sp} mm<br>"
                f"File orientation {''.join(case.source.axcodes)}"
                + (f"<br>{Path(case.source.path).name}" if case.source.path else "")
                + dicom_summary(case.metadata, identifiers=self.show_ids.isChecked()))
            self.seg_btn.setVisible(seg_possible(case))
            self.show_ids.setVisible(bool(case.metadata.get("dicom_identifiers")))
            self.warning.setText("\n".join(f"Warning: {w}" for w in case.warnings))
            self.warning.setVisible(bool(case.warnings))
            self.window.setCurrentIndex(0 if case.modality == "CT" else self.window.count() - 1)
        self.box.refresh()

    def _refresh_structures(self) -> None:
        self.box.refresh()

    def set_scheme(self, scheme: str) -> bool:
        """Read the labels layer's file ids in another scheme (see :class:`StructureBox`)."""
        return self.box.set_scheme(scheme)

    def undo_scheme(self) -> bool:
        """Go back to the scheme before the last change."""
        return self.box.undo_scheme()

    def go_to_structure(self, structure_id: int) -> tuple[float, ...] | None:
        """Centre the view on a structure (the slice through its centre)."""
        return self.box.go_to(structure_id)

    def apply_window(self, text: str) -> tuple[float, float] | None:
        """Apply a window preset by its label (``"Bone"``, ``"Soft tissue"``, ``"Auto ..."``)."""
        layer = self.ws.image_layer()
        if layer is None:
            return None
        key = text.lower()
        limits = window_limits(key) if key in CT_WINDOWS else mr_contrast_limits(np.asarray(layer.data))
        lo, hi = layer.contrast_limits_range
        layer.contrast_limits_range = (min(lo, limits[0]), max(hi, limits[1]))
        layer.contrast_limits = limits
        return limits

    def describe_position(self, world: Any) -> str:
        """Structure name and RAS+ mm position at a world (display-frame) point."""
        world = np.asarray(world, dtype=float)
        parts = []
        layer = self.ws.labels_layer()
        if layer is not None:
            value = layer.get_value(world, world=True)
            if value is not None and not isinstance(value, tuple):
                v = int(value)
                parts.append(ontology.name_of(v) if v else self.box.other_at(layer, world))
        case = self.ws.current_case()
        img = (self.ws.image_layer() or layer) if case is not None else None
        if img is not None:
            ijk = np.asarray(img.world_to_data(world))[-3:]
            ras = geometry.voxel_to_world(case.affine, ijk[None])[0]
            parts.append("RAS ({:.1f}, {:.1f}, {:.1f}) mm".format(*ras))
        return ", ".join(parts) if parts else "-"

    def _on_mouse_move(self, viewer, event) -> None:
        self.cursor.setText(f"Under cursor: {self.describe_position(viewer.cursor.position)}")

    # -- levels ------------------------------------------------------------------------
    def identify_levels(self, anchor: str | None = None):
        """Add a per-level copy of the current labels layer (generic bodies/discs numbered)."""
        from napari.utils.notifications import show_warning

        layer = self.ws.labels_layer()
        if layer is None:
            self.status.setText("No labels layer to number.")
            return None
        anchor = anchor or self.anchor.currentText()
        case = self.ws.case_of(layer)
        ribs = (rib_masks(case.native_labels, {e.native_id: e.name for e in case.other_structures()})
                if case is not None and case.native_labels is not None else None)
        result = number_levels(np.asarray(layer.data), None if anchor == "Automatic" else anchor,
                               spacing=tuple(layer.scale[-3:]), ribs=ribs or None)
        new = self.viewer.add_labels(
            result.labels, name=f"{layer.name} levels", scale=layer.scale, translate=layer.translate,
            colormap=labels_colormap(), features=labels_features(), opacity=layer.opacity,
            metadata=dict(layer.metadata))
        self._levels = (new, result)
        for b in (self.alt_up, self.alt_down):
            b.setVisible(bool(result.alternatives))
        self.status.setText(result.summary() + "".join(f"; {w}" for w in result.warnings))
        if result.warnings:
            show_warning("; ".join(result.warnings))
        return new

    def apply_alternative(self, step: int) -> bool:
        """Renumber the last numbered layer ``step`` levels down (``-1``: up), discs with it."""
        if self._levels is None:
            return False
        layer, result = self._levels
        try:
            layer.data = result.shifted(step)
        except ValueError as exc:  # past C1 or S1: said, not raised
            self.status.setText(f"Not renumbered: {exc}")
            return False
        self.status.setText(f"Levels renumbered one level {'down' if step > 0 else 'up'}")
        return True

    # -- export ------------------------------------------------------------------------
    def _labels_and_case(self):
        """The labels layer to export and its case (raises when either is missing)."""
        layer = self.ws.labels_layer()
        if layer is None:
            raise ValueError("no labels layer to export")
        case = self.ws.case_of(layer) or self.ws.current_case()
        if case is None:
            raise ValueError("the labels layer does not belong to a spine case")
        return layer, case

    def export_labels_to(self, path: str | Path, scheme: str | None = None) -> ExportResult:
        """Export the current labels layer on the source grid (synchronously)."""
        layer, case = self._labels_and_case()
        result = export_labels(case, np.asarray(layer.data), path, scheme=scheme or self.scheme.currentText())
        self._last_export = result
        return result

    def export_seg_to(self, path: str | Path):
        """Export the current labels layer as a DICOM SEG of its DICOM case (synchronously)."""
        from ...io.dicomseg import export_seg

        layer, case = self._labels_and_case()
        return export_seg(case, np.asarray(layer.data), path)

    def _export_seg_dialog(self) -> None:
        path = self._ask_path("Export DICOM SEG", "DICOM (*.dcm)", (".dcm",))
        if path:
            self.task.start(lambda: self.export_seg_to(path), desc="Exporting DICOM SEG",
                            done=lambda r: f"Saved and verified {r.path.name}: {len(r.segments)} segments")

    def export_landmarks_to(self, path: str | Path) -> Path:
        """Export the newest landmarks layer of a spine case (JSON or CSV by extension)."""
        from .._writer import write_landmarks

        pts = [ly for ly in self.ws.layers_of("points") if META_KEY in ly.metadata]
        if not pts:
            raise ValueError("no landmarks layer to export")
        ly = pts[-1]
        out = write_landmarks(str(path), ly.data, {"metadata": ly.metadata, "features": ly.features},
                              rulers=rulers_of(self.ws, self.ws.case_of(ly)))
        return Path(out[0])

    def _ask_path(self, title: str, filters: str, exts: tuple[str, ...]) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, "", filters)
        if path and not path.lower().endswith(exts):
            path += exts[0]
        return path or None

    def _export_labels_dialog(self) -> None:
        path = self._ask_path("Export labels", "NIfTI (*.nii.gz *.nii)", (".nii.gz", ".nii"))
        if path:
            scheme = self.scheme.currentText()
            self.task.start(lambda: self.export_labels_to(path, scheme), desc="Exporting labels",
                            done=lambda r: f"Saved and verified {r.path.name}: {len(r.counts)} "
                            f"structures, {r.scheme} ids, {r.dtype}")

    def _export_landmarks_dialog(self) -> None:
        path = self._ask_path("Export landmarks", "JSON (*.json);;CSV (*.csv)", (".json", ".csv"))
        if path:
            self.task.start(lambda: self.export_landmarks_to(path), desc="Exporting landmarks",
                            done=lambda p: f"Saved {Path(p).name}")
