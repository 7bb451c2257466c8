"""The "Spine case" dock widget: what is loaded, contrast presets, structures, export.

Thin: every action calls the core (:mod:`napari_spine.io.export`, :mod:`napari_spine.anatomy.ontology`)
and long work runs in a napari thread worker with a progress indicator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import geometry
from ..anatomy import ontology
from ..anatomy.labelmaps import label_counts
from ..anatomy.levels import identify_levels as number_levels
from ..anatomy.levels import standard_levels
from ..case import SpineCase
from ..io.export import ExportResult, export_labels
from ._layers import (
    CT_WINDOWS,
    META_KEY,
    case_from_layer,
    center_view_on,
    labels_colormap,
    labels_features,
    mr_contrast_limits,
    window_limits,
)

if TYPE_CHECKING:
    import napari

_CONVENTION = "Sagittal view: superior at the top, anterior on the left (axes L, I, P)."


def _swatch(rgba) -> QPixmap:
    pm = QPixmap(14, 14)
    pm.fill(QColor.fromRgbF(*[float(c) for c in rgba]))
    return pm


class CaseWidget(QWidget):
    """Summary, contrast, structures and export for the spine case in the viewer."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self._last_export: ExportResult | None = None
        self._worker = None

        self.summary = QLabel("No spine case loaded. Open a NIfTI file or a sample.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #ffae42; font-weight: bold;")
        self.warning.setVisible(False)
        self.convention = QLabel(_CONVENTION)
        self.convention.setWordWrap(True)
        self.convention.setStyleSheet("color: #9aa0a6;")
        self.cursor = QLabel("Under cursor: -")
        self.cursor.setStyleSheet("font-weight: bold;")

        self.window = QComboBox()
        self.window.addItems([*(w.capitalize() for w in CT_WINDOWS), "Auto (0.5-99.5 %)"])
        self.window.setToolTip("CT window (width/level) or automatic MR contrast")
        self.window.activated.connect(lambda _i: self.apply_window(self.window.currentText()))

        self.structures = QListWidget()
        self.structures.setToolTip("Structures in the labels layer; click one to go to it")
        self.structures.itemClicked.connect(self._on_structure_clicked)
        self.label_scheme = QComboBox()
        self.label_scheme.setToolTip("How the label file's ids are read; the schemes listed can "
                                     "read every id of the file. Changing it renames in place.")
        self.label_scheme.activated.connect(lambda _i: self.set_scheme(self.label_scheme.currentText()))
        self.names_from = QLabel("")
        self.names_from.setStyleSheet("color: #9aa0a6;")
        self.names_from.setWordWrap(True)
        self.undo_scheme_btn = QPushButton("Undo")
        self.undo_scheme_btn.setToolTip("Go back to the scheme used before the last change")
        self.undo_scheme_btn.setEnabled(False)
        self.undo_scheme_btn.clicked.connect(lambda: self.undo_scheme())
        self._scheme_history: list[SpineCase] = []

        self.scheme = QComboBox()
        self.scheme.addItems(["native", "canonical"])
        self.scheme.setToolTip(
            "native: the label ids of the dataset the case came from; "
            "canonical: VerSe/TPTBox ids (C1=1 ... L5=24, S1=26, discs +100)"
        )
        self.export_btn = QPushButton("Export labels (NIfTI)...")
        self.export_btn.clicked.connect(self._export_labels_dialog)
        self.landmarks_btn = QPushButton("Export landmarks (JSON/CSV)...")
        self.landmarks_btn.clicked.connect(self._export_landmarks_dialog)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.anchor = QComboBox()
        self.anchor.addItems(list(standard_levels()))
        self.anchor.setCurrentText("C2")
        self.anchor.setToolTip("Level of the topmost vertebral body in the field of view")
        self.levels_btn = QPushButton("Identify levels")
        self.levels_btn.setToolTip(
            "Number 'level not assigned' bodies and discs from the top down into a new labels "
            "layer (the original layer is kept)"
        )
        self.levels_btn.clicked.connect(lambda: self.identify_levels())

        info = QGroupBox("Case")
        il = QVBoxLayout(info)
        for w in (self.summary, self.warning, self.convention, self.cursor):
            il.addWidget(w)
        disp = QGroupBox("Display")
        dl = QFormLayout(disp)
        dl.addRow("Window", self.window)
        struct = QGroupBox("Structures")
        sl = QVBoxLayout(struct)
        srow = QHBoxLayout()
        srow.addWidget(QLabel("Scheme"))
        srow.addWidget(self.label_scheme, 1)
        srow.addWidget(self.undo_scheme_btn)
        sl.addLayout(srow)
        sl.addWidget(self.names_from)
        sl.addWidget(self.structures)
        lev = QGroupBox("Levels")
        ll = QHBoxLayout(lev)
        ll.addWidget(QLabel("Top body"))
        ll.addWidget(self.anchor)
        ll.addWidget(self.levels_btn)
        exp = QGroupBox("Export")
        el = QVBoxLayout(exp)
        row = QHBoxLayout()
        row.addWidget(QLabel("Label ids"))
        row.addWidget(self.scheme)
        el.addLayout(row)
        el.addWidget(self.export_btn)
        el.addWidget(self.landmarks_btn)
        el.addWidget(self.status)

        layout = QVBoxLayout(self)
        for g in (info, disp, struct, lev, exp):
            layout.addWidget(g)
        layout.addStretch(1)

        # recount the structures shortly after an edit (painting fires many events)
        self._recount = QTimer(self)
        self._recount.setSingleShot(True)
        self._recount.setInterval(400)
        self._recount.timeout.connect(self._refresh_structures)
        self._watched = None

        self.viewer.layers.events.inserted.connect(self._refresh)
        self.viewer.layers.events.removed.connect(self._refresh)
        self.viewer.layers.selection.events.active.connect(self._refresh)
        self.viewer.mouse_move_callbacks.append(self._on_mouse_move)
        self._refresh()

    # -- layer lookup ------------------------------------------------------------------
    def _layers_of(self, kind: str) -> list:
        from napari.layers import Image, Labels, Points

        klass = {"image": Image, "labels": Labels, "points": Points}[kind]
        return [ly for ly in self.viewer.layers if isinstance(ly, klass)]

    def current_case(self) -> SpineCase | None:
        active = self.viewer.layers.selection.active
        if active is not None and (c := case_from_layer(active)) is not None:
            return c
        for ly in reversed(list(self.viewer.layers)):
            if (c := case_from_layer(ly)) is not None:
                return c
        return None

    def image_layer(self):
        case = self.current_case()
        for ly in reversed(self._layers_of("image")):
            if case is None or case_from_layer(ly) is case:
                return ly
        return None

    def labels_layer(self):
        active = self.viewer.layers.selection.active
        labels = self._layers_of("labels")
        if active in labels:
            return active
        return labels[-1] if labels else None

    # -- display -----------------------------------------------------------------------
    def _refresh(self, *_: Any) -> None:
        case = self.current_case()
        if case is None:
            self.summary.setText("No spine case loaded. Open a NIfTI file or a sample.")
            self.warning.setVisible(False)
        else:
            sp = " x ".join(f"{s:.3g}" for s in case.spacing)
            self.summary.setText(
                f"<b>{case.case_id}</b> ({case.dataset}) - {case.modality}<br>"
                f"{case.shape[0]} x {case.shape[1]} x {case.shape[2]} voxels, {sp} mm<br>"
                f"File orientation {''.join(case.source.axcodes)}"
                + (f"<br>{Path(case.source.path).name}" if case.source.path else "")
            )
            self.warning.setText("\n".join(f"Warning: {w}" for w in case.warnings))
            self.warning.setVisible(bool(case.warnings))
            self.window.setCurrentIndex(0 if case.modality == "CT" else self.window.count() - 1)
        self._refresh_structures()

    def _watch(self, layer) -> None:
        if layer is self._watched:
            return
        if self._watched is not None:
            self._watched.events.paint.disconnect(self._schedule_recount)
            self._watched.events.data.disconnect(self._schedule_recount)
        self._watched = layer
        if layer is not None:
            layer.events.paint.connect(self._schedule_recount)
            layer.events.data.connect(self._schedule_recount)

    def _schedule_recount(self, event: Any = None) -> None:
        self._recount.start()

    def _refresh_structures(self) -> None:
        self.structures.clear()
        layer = self.labels_layer()
        self._watch(layer)
        case = case_from_layer(layer) if layer is not None else None
        if getattr(self, "_schemes_for", None) is not case:  # the picker follows the case shown
            self._schemes_for = case
            self._fill_schemes(case)
        if layer is None:
            return
        data = np.asarray(layer.data)
        counts = label_counts(data)
        vox_ml = float(np.prod(layer.scale[-3:])) / 1000.0
        present = set(counts)
        for sid in ontology.sort_cranio_caudal(counts):
            name = ontology.display_name(sid, present)
            item = QListWidgetItem(f"{name}  ({counts[sid] * vox_ml:.2f} mL)")
            if sid in ontology.BY_ID:
                item.setIcon(QIcon(_swatch(ontology.BY_ID[sid].color)))
            item.setData(Qt.ItemDataRole.UserRole, int(sid))
            self.structures.addItem(item)
        self._add_other_structures(layer, vox_ml)

    def _fill_schemes(self, case: SpineCase | None) -> None:
        self.label_scheme.blockSignals(True)
        self.label_scheme.clear()
        if case is not None and case.labels is not None:
            from ..anatomy.labelmaps import get_label_map

            for name in case.fitting_schemes():
                self.label_scheme.addItem(name)
            self.label_scheme.setCurrentText(case.label_scheme)
            lm = get_label_map(case.label_scheme)
            self.names_from.setText(f"Names from: {lm.source} ({lm.description})")
        else:
            self.names_from.setText("")
        self.label_scheme.setEnabled(self.label_scheme.count() > 1)
        self.label_scheme.blockSignals(False)

    def set_scheme(self, scheme: str) -> bool:
        """Read the labels layer's file ids in another scheme, in place (the image stays);
        :meth:`undo_scheme` goes back."""
        layer = self.labels_layer()
        case = case_from_layer(layer) if layer is not None else None
        if case is None or scheme == case.label_scheme:
            return False
        try:
            new = case.with_scheme(scheme)
        except (ValueError, KeyError) as exc:  # LabelMapError is a ValueError: shown, not raised
            self.status.setText(f"Scheme not changed: {exc}")
            self._fill_schemes(case)
            return False
        self._scheme_history.append(case)
        self._swap_case(case, new)
        self.undo_scheme_btn.setEnabled(True)
        self.status.setText(f"Labels read as {new.label_scheme}")
        return True

    def undo_scheme(self) -> bool:
        """Go back to the scheme before the last :meth:`set_scheme`."""
        layer = self.labels_layer()
        case = case_from_layer(layer) if layer is not None else None
        if not self._scheme_history or case is None:
            return False
        old = self._scheme_history.pop()
        self._swap_case(case, old)
        self.undo_scheme_btn.setEnabled(bool(self._scheme_history))
        self.status.setText(f"Labels read as {old.label_scheme} again")
        return True

    def _swap_case(self, case: SpineCase, new: SpineCase) -> None:
        """Every layer of ``case`` now belongs to ``new``; the labels layer shows its labels."""
        from ._layers import META_KEY

        for ly in self.viewer.layers:
            if case_from_layer(ly) is case:
                entry = dict(ly.metadata[META_KEY])
                entry["case"] = new
                ly.metadata = {**ly.metadata, META_KEY: entry}
                if entry.get("role") == "labels":
                    ly.data = np.asarray(new.labels)
        self._refresh_structures()

    def _add_other_structures(self, layer, vox_ml: float) -> None:
        """Structures of the file outside the spine table (organs ...), with their own names
        and colours, as loaded; they are not part of the spine labels layer."""
        case = case_from_layer(layer)
        if case is None:
            return
        others, native_counts = self._other_structures(case)
        if not others:
            return
        head = QListWidgetItem(f"Other structures ({len(others)}, as loaded; names: {others[0].source})")
        head.setFlags(Qt.ItemFlag.NoItemFlags)
        self.structures.addItem(head)
        for e in others:
            n = native_counts.get(e.native_id, 0)
            item = QListWidgetItem(f"  {e.name}  ({n * vox_ml:.2f} mL)")
            item.setIcon(QIcon(_swatch(e.color)))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.structures.addItem(item)

    def apply_window(self, text: str) -> tuple[float, float] | None:
        """Apply a window preset by its label (``"Bone"``, ``"Soft tissue"``, ``"Auto ..."``)."""
        layer = self.image_layer()
        if layer is None:
            return None
        key = text.lower()
        if key in CT_WINDOWS:
            limits = window_limits(key)
        else:
            limits = mr_contrast_limits(np.asarray(layer.data))
        lo, hi = layer.contrast_limits_range
        layer.contrast_limits_range = (min(lo, limits[0]), max(hi, limits[1]))
        layer.contrast_limits = limits
        return limits

    def go_to_structure(self, structure_id: int) -> tuple[float, ...] | None:
        """Centre the view on a structure (sets the slider to the slice through its centre)."""
        layer = self.labels_layer()
        if layer is None:
            return None
        data = np.asarray(layer.data)
        from scipy import ndimage

        sl = ndimage.find_objects((data == structure_id).astype(np.uint8, copy=False))
        if not sl or sl[0] is None:
            return None
        box = sl[0]
        sub = data[box] == structure_id
        centre = np.array([b.start for b in box]) + np.argwhere(sub).mean(axis=0)
        return center_view_on(self.viewer, layer, centre)

    def _on_structure_clicked(self, item: QListWidgetItem) -> None:
        self.go_to_structure(int(item.data(Qt.ItemDataRole.UserRole)))

    def describe_position(self, world: Any) -> str:
        """Structure name and RAS+ mm position at a world (display-frame) point."""
        world = np.asarray(world, dtype=float)
        parts = []
        layer = self.labels_layer()
        if layer is not None:
            value = layer.get_value(world, world=True)
            if value is not None and not isinstance(value, tuple):
                v = int(value)
                parts.append(ontology.name_of(v) if v else self._other_at(layer, world))
        case = self.current_case()
        if case is not None:
            img = self.image_layer() or layer
            if img is not None:
                ijk = np.asarray(img.world_to_data(world))[-3:]
                ras = geometry.voxel_to_world(case.affine, ijk[None])[0]
                parts.append("RAS ({:.1f}, {:.1f}, {:.1f}) mm".format(*ras))
        return ", ".join(parts) if parts else "-"

    def _other_structures(self, case: SpineCase) -> tuple[list, dict[int, int]]:
        """The case's structures outside the spine table and their voxel counts, worked
        out once per loaded case (the file's own ids do not change while it is shown)."""
        if getattr(self, "_others", (None,))[0] is not case:
            others = case.other_structures()
            counts = (label_counts(np.asarray(case.native_labels))
                      if others and case.native_labels is not None else {})
            self._others = (case, others, counts)
        return self._others[1], self._others[2]

    def _other_at(self, layer, world) -> str:
        """'background', or the file's own name of a structure outside the spine table."""
        case = case_from_layer(layer)
        if case is None or case.native_labels is None:
            return "background"
        ijk = np.round(np.asarray(layer.world_to_data(world))[-3:]).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= case.native_labels.shape):
            return "background"
        native = int(case.native_labels[tuple(ijk)])
        if not native:
            return "background"
        entry = next((e for e in self._other_structures(case)[0] if e.native_id == native), None)
        return f"{entry.name} (other structure)" if entry is not None else f"Label {native}"

    def _on_mouse_move(self, viewer, event) -> None:
        self.cursor.setText(f"Under cursor: {self.describe_position(viewer.cursor.position)}")

    # -- levels ------------------------------------------------------------------------
    def identify_levels(self, anchor: str | None = None):
        """Add a per-level copy of the current labels layer (generic bodies/discs numbered)."""
        from napari.utils.notifications import show_warning

        layer = self.labels_layer()
        if layer is None:
            self.status.setText("No labels layer to number.")
            return None
        data = np.asarray(layer.data)
        result = number_levels(data, anchor or self.anchor.currentText(),
                                 spacing=tuple(layer.scale[-3:]))
        new = self.viewer.add_labels(
            result.labels, name=f"{layer.name} levels", scale=layer.scale, translate=layer.translate,
            colormap=labels_colormap(), features=labels_features(), opacity=layer.opacity,
            metadata=dict(layer.metadata),
        )
        msg = (f"{len(result.bodies)} bodies and {len(result.discs)} discs numbered from "
               f"{anchor or self.anchor.currentText()}")
        self.status.setText(msg + "".join(f"; {w}" for w in result.warnings))
        if result.warnings:
            show_warning("; ".join(result.warnings))
        return new

    # -- export ------------------------------------------------------------------------
    def export_labels_to(self, path: str | Path, scheme: str | None = None) -> ExportResult:
        """Export the current labels layer synchronously (used by the dialog's worker)."""
        layer = self.labels_layer()
        if layer is None:
            raise ValueError("no labels layer to export")
        case = case_from_layer(layer) or self.current_case()
        if case is None:
            raise ValueError("the labels layer does not belong to a spine case")
        result = export_labels(case, np.asarray(layer.data), path, scheme=scheme or self.scheme.currentText())
        self._last_export = result
        return result

    def export_landmarks_to(self, path: str | Path) -> Path:
        from ._writer import write_landmarks

        pts = [ly for ly in self._layers_of("points") if META_KEY in ly.metadata]
        if not pts:
            raise ValueError("no landmarks layer to export")
        ly = pts[-1]
        out = write_landmarks(str(path), ly.data, {"metadata": ly.metadata, "features": ly.features})
        return Path(out[0])

    def _run(self, fn, desc: str, done) -> None:
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error, show_info

        self.export_btn.setEnabled(False)
        self.status.setText(f"{desc}...")
        worker = create_worker(fn, _progress={"total": 0, "desc": desc})

        def _ok(result):
            self.status.setText(done(result))
            show_info(done(result))

        def _err(exc):
            self.status.setText(f"Failed: {exc}")
            show_error(f"{desc} failed: {exc}")

        worker.returned.connect(_ok)
        worker.errored.connect(_err)
        worker.finished.connect(lambda: self.export_btn.setEnabled(True))
        self._worker = worker
        worker.start()

    def _export_labels_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export labels", "", "NIfTI (*.nii.gz *.nii)")
        if not path:
            return
        if not path.lower().endswith((".nii", ".nii.gz")):
            path += ".nii.gz"
        scheme = self.scheme.currentText()
        self._run(
            lambda: self.export_labels_to(path, scheme),
            "Exporting labels",
            lambda r: f"Saved and verified {r.path.name}: {len(r.counts)} structures, "
            f"{r.scheme} ids, {r.dtype}",
        )

    def _export_landmarks_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export landmarks", "", "JSON (*.json);;CSV (*.csv)")
        if not path:
            return
        if not path.lower().endswith((".json", ".csv")):
            path += ".json"
        self._run(lambda: self.export_landmarks_to(path), "Exporting landmarks",
                  lambda p: f"Saved {Path(p).name}")
