"""The "Spine correction" dock widget: level-aware edits, validator, journal, export.

Every operation is a pure function of :mod:`napari_spine.correction`; the widget applies
its result to the labels layer through ``Labels.data_setitem`` (so napari's undo restores
it), records it in the crash-safe journal and re-runs the level-sequence validator.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QShortcut,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import correction as corr
from ..anatomy import ontology
from ..case import Landmarks, SpineCase
from ..io.export import export_labels
from ..io.nnunet_raw import export_nnunet_dataset
from ._layers import case_from_layer, center_view_on

if TYPE_CHECKING:
    import napari

_ALL_NAMES = [ontology.name_of(i) for i in ontology.sort_cranio_caudal(s.id for s in ontology.STRUCTURES)]


class CorrectionWidget(QWidget):
    """Correct a spine labels layer level by level, safely."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.output = Path.home() / "napari-spine"
        self.sessions: dict[str, corr.CorrectionSession] = {}
        self.findings: list[corr.Finding] = []
        self.training: list[SpineCase] = []
        self._layer = None

        # -- structure to paint -----------------------------------------------------------
        self.search = QLineEdit()
        self.search.setPlaceholderText("Structure to paint, e.g. L3 or L4/L5")
        completer = QCompleter(_ALL_NAMES, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.search.setCompleter(completer)
        self.search.returnPressed.connect(lambda: self.pick(self.search.text()))
        self.painting = QLabel("Painting: -")
        self.painting.setStyleSheet("font-weight: bold;")
        self.under = QLabel("Under cursor: -")

        # -- level operations -------------------------------------------------------------
        self.from_level = QComboBox()
        self.from_level.addItems(["whole case", *[ontology.name_of(v) for v in corr.level_sequence(("T13", "L6"))]])
        self.shift_up = QPushButton("Shift levels up")
        self.shift_up.setToolTip("Every level one step cranial (L4 -> L3), discs and landmarks with it")
        self.shift_up.clicked.connect(lambda: self.shift(-1))
        self.shift_down = QPushButton("Shift levels down")
        self.shift_down.setToolTip("Every level one step caudal (L3 -> L4), discs and landmarks with it")
        self.shift_down.clicked.connect(lambda: self.shift(+1))
        self.struct_a = QComboBox()
        self.struct_b = QComboBox()
        for cb in (self.struct_a, self.struct_b):
            cb.setEditable(True)
            cb.addItems(_ALL_NAMES)
        self.struct_a.setCurrentText("L3")
        self.struct_b.setCurrentText("L4")
        buttons = {
            "Relabel A as B": lambda: self._op("relabel", corr.relabel, self._id_a(), self._id_b()),
            "Swap A and B": lambda: self._op("swap", corr.swap_levels, self._id_a(), self._id_b()),
            "Merge A into B": lambda: self._op("merge", corr.merge, self._id_a(), self._id_b()),
            "Split A at plane into B": self.split_at_plane,
            "Revert A to loaded": self.revert_structure,
        }

        # -- clean-up ------------------------------------------------------------------
        self.min_volume = QDoubleSpinBox()
        self.min_volume.setRange(0, 1e6)
        self.min_volume.setValue(100.0)
        self.min_volume.setSuffix(" mm³")
        self.slice_a = QSpinBox()
        self.slice_b = QSpinBox()
        for sb in (self.slice_a, self.slice_b):
            sb.setRange(0, 100000)
        cleanup = {
            "Remove islands": lambda: self._op("remove islands", corr.remove_islands, self.min_volume.value(),
                                               self._spacing()),
            "Keep largest piece": lambda: self._op("keep largest", corr.keep_largest),
            "Fill holes": lambda: self._op("fill holes", corr.fill_holes),
            "Interpolate A between slices": lambda: self._op(
                "interpolate", corr.interpolate_between_slices, self._id_a(), self.slice_a.value(),
                self.slice_b.value(), 0),
        }

        # -- locks ----------------------------------------------------------------------
        self.locks = QListWidget()
        self.locks.setToolTip("Ticked structures cannot be changed by painting or by any operation")
        self.locks.setMaximumHeight(110)

        # -- validator ------------------------------------------------------------------
        self.problems = QListWidget()
        self.problems.setToolTip("Click a problem to go to it")
        self.problems.itemClicked.connect(lambda item: self.jump_to(self.problems.row(item)))

        # -- journal and export -----------------------------------------------------------
        self.out_edit = QLineEdit(str(self.output))
        self.out_edit.editingFinished.connect(lambda: self.set_output(self.out_edit.text()))
        out_btn = QPushButton("...")
        out_btn.clicked.connect(self._choose_output)
        self.restore_btn = QPushButton("Restore unsaved edits")
        self.restore_btn.setStyleSheet("background-color: #8a5a00;")
        self.restore_btn.setVisible(False)
        self.restore_btn.clicked.connect(lambda: self.restore_pending())
        self.scheme = QComboBox()
        self.scheme.addItems(["native", "canonical"])
        self.export_btn = QPushButton("Save labels (NIfTI)")
        self.export_btn.clicked.connect(lambda: self.save_labels())
        self.landmarks_btn = QPushButton("Save landmarks (JSON + CSV)")
        self.landmarks_btn.clicked.connect(lambda: self.save_landmarks())
        self.train_btn = QPushButton("Add case to training set")
        self.train_btn.clicked.connect(lambda: self.add_to_training())
        self.nnunet_btn = QPushButton("Export nnU-Net dataset (0 cases)")
        self.nnunet_btn.clicked.connect(lambda: self.export_training())
        self.status = QLabel("")
        self.status.setWordWrap(True)

        # -- layout ---------------------------------------------------------------------
        layout = QVBoxLayout(self)
        g = QGroupBox("Paint")
        gl = QVBoxLayout(g)
        gl.addWidget(self.search)
        gl.addWidget(self.painting)
        gl.addWidget(self.under)
        layout.addWidget(g)
        g = QGroupBox("Levels")
        gl = QGridLayout(g)
        gl.addWidget(QLabel("From"), 0, 0)
        gl.addWidget(self.from_level, 0, 1)
        gl.addWidget(self.shift_up, 1, 0)
        gl.addWidget(self.shift_down, 1, 1)
        gl.addWidget(QLabel("A"), 2, 0)
        gl.addWidget(self.struct_a, 2, 1)
        gl.addWidget(QLabel("B"), 3, 0)
        gl.addWidget(self.struct_b, 3, 1)
        self.buttons: dict[str, QPushButton] = {}
        for k, (text, fn) in enumerate({**buttons, **cleanup}.items()):
            b = QPushButton(text)
            b.clicked.connect(fn)
            self.buttons[text] = b
            gl.addWidget(b, 4 + k // 2, k % 2)
        row = 4 + (len(buttons) + len(cleanup) + 1) // 2
        form = QFormLayout()
        form.addRow("Islands below", self.min_volume)
        sl = QHBoxLayout()
        sl.addWidget(self.slice_a)
        sl.addWidget(self.slice_b)
        form.addRow("Slices (sagittal)", sl)
        gl.addLayout(form, row, 0, 1, 2)
        layout.addWidget(g)
        g = QGroupBox("Locked structures")
        QVBoxLayout(g).addWidget(self.locks)
        layout.addWidget(g)
        g = QGroupBox("Level check")
        QVBoxLayout(g).addWidget(self.problems)
        layout.addWidget(g)
        g = QGroupBox("Save")
        gl = QFormLayout(g)
        orow = QHBoxLayout()
        orow.addWidget(self.out_edit, 1)
        orow.addWidget(out_btn)
        gl.addRow("Output folder", orow)
        gl.addRow(self.restore_btn)
        gl.addRow("Label ids", self.scheme)
        gl.addRow(self.export_btn)
        gl.addRow(self.landmarks_btn)
        gl.addRow(self.train_btn)
        gl.addRow(self.nnunet_btn)
        gl.addRow(self.status)
        layout.addWidget(g)
        layout.addStretch(1)

        for keys, step in (("Ctrl+Alt+Down", +1), ("Ctrl+Alt+Up", -1)):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(lambda s=step: self.step_level(s))

        self._after_paint = QTimer(self)
        self._after_paint.setSingleShot(True)
        self._after_paint.setInterval(0)  # right after the stroke ends (napari emits paint once per stroke)
        self._after_paint.timeout.connect(self._commit_paint)
        # the level check and lock list (whole-volume passes) wait for a pause in painting
        self._recheck = QTimer(self)
        self._recheck.setSingleShot(True)
        self._recheck.setInterval(600)
        self._recheck.timeout.connect(self._after_edits)
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self.viewer.layers.events.inserted.connect(self._on_active)
        self.viewer.mouse_move_callbacks.append(self._on_mouse_move)
        self._on_active()

    # -- layer and session ------------------------------------------------------------
    def labels_layer(self):
        from napari.layers import Labels

        active = self.viewer.layers.selection.active
        if isinstance(active, Labels):
            return active
        labels = [ly for ly in self.viewer.layers if isinstance(ly, Labels)]
        return labels[-1] if labels else None

    def _case_id(self, layer) -> str:
        case = case_from_layer(layer)
        return f"{case.dataset}-{case.case_id}" if case is not None else layer.name

    @staticmethod
    def _source(layer) -> str | None:
        """The file a layer's labels come from (else its image): the journal's key."""
        case = case_from_layer(layer)
        if case is None:
            return None
        return (case.source.label_path or case.source.path or case.metadata.get("labels_path")
                or case.metadata.get("image_path") or None)

    @staticmethod
    def _key(layer) -> str:
        # napari hands plugins proxies of its layers (a new object per access): key by the
        # layer's own id, never by the Python object
        return str(getattr(layer, "unique_id", None) or layer.name)

    def session(self, layer=None) -> corr.CorrectionSession | None:
        layer = layer or self.labels_layer()
        if layer is None:
            return None
        key = self._key(layer)
        if key not in self.sessions:
            journal = corr.EditJournal(self.output / ".journal", self._case_id(layer), layer.data.shape,
                                       source=self._source(layer))
            self.sessions[key] = corr.CorrectionSession(np.asarray(layer.data), journal)
            pending = self.sessions[key].pending
            self.restore_btn.setVisible(pending)
            if pending:
                n = len(journal.entries())
                self.restore_btn.setText(f"Restore {n} unsaved edit(s) from the last session")
        return self.sessions[key]

    def set_output(self, folder: str | Path) -> None:
        self.output = Path(folder).expanduser()
        self.out_edit.setText(str(self.output))
        self.sessions.clear()
        self.session()  # the baseline is the layer as it is now; the journal lives in the new folder

    def _choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", str(self.output))
        if folder:
            self.set_output(folder)

    def _on_active(self, *_: Any) -> None:
        layer = self.labels_layer()
        if layer is self._layer or (layer is not None and self._layer is not None
                                    and self._key(layer) == self._key(self._layer)):
            return
        if self._layer is not None:
            try:
                self._layer.events.paint.disconnect(self._schedule_commit)
                self._layer.events.selected_label.disconnect(self._show_painting)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._layer = layer
        if layer is None:
            return
        layer.events.paint.connect(self._schedule_commit)
        layer.events.selected_label.connect(self._show_painting)
        self.session(layer)
        self._fill_locks()
        self._show_painting()
        self.validate()

    # -- picking ------------------------------------------------------------------------
    def pick(self, name: str) -> int | None:
        """Select the structure to paint by anatomical name."""
        layer = self.labels_layer()
        try:
            sid = ontology.by_name(name).id
        except KeyError:
            self.status.setText(f"No structure called {name!r}")
            return None
        if layer is not None:
            layer.selected_label = sid
            layer.mode = "paint"
        self._show_painting()
        return sid

    def step_level(self, step: int) -> None:
        """Move the painted structure to the next (+1) / previous (-1) level, discs included."""
        layer = self.labels_layer()
        if layer is None:
            return
        order = list(ontology.cranio_caudal_order())
        cur = int(layer.selected_label)
        k = order.index(cur) + step if cur in order else 0
        layer.selected_label = order[min(max(k, 0), len(order) - 1)]
        self._show_painting()

    def _show_painting(self, *_: Any) -> None:
        layer = self.labels_layer()
        if layer is not None:
            sid = int(layer.selected_label)
            self.painting.setText(f"Painting: {ontology.name_of(sid)} ({sid})")

    def _on_mouse_move(self, viewer, event) -> None:
        layer = self.labels_layer()
        if layer is None:
            return
        value = layer.get_value(viewer.cursor.position, world=True)
        if value is not None and not isinstance(value, tuple):
            self.under.setText(f"Under cursor: {ontology.name_of(int(value)) if value else 'background'}")

    # -- locks --------------------------------------------------------------------------
    def _fill_locks(self) -> None:
        from ..anatomy.labelmaps import label_counts

        layer = self.labels_layer()
        locked = set(self.locked_ids())
        self.locks.clear()
        if layer is None:
            return
        for sid in ontology.sort_cranio_caudal(label_counts(np.asarray(layer.data))):
            item = QListWidgetItem(ontology.name_of(sid))
            item.setData(Qt.ItemDataRole.UserRole, int(sid))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if sid in locked else Qt.CheckState.Unchecked)
            self.locks.addItem(item)

    def locked_ids(self) -> list[int]:
        return [int(self.locks.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.locks.count())
                if self.locks.item(i).checkState() == Qt.CheckState.Checked]

    def lock(self, name: str, on: bool = True) -> None:
        sid = ontology.by_name(name).id
        for i in range(self.locks.count()):
            if self.locks.item(i).data(Qt.ItemDataRole.UserRole) == sid:
                self.locks.item(i).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    # -- operations ---------------------------------------------------------------------
    def _id_a(self) -> int:
        return ontology.by_name(self.struct_a.currentText()).id

    def _id_b(self) -> int:
        text = self.struct_b.currentText().strip()
        return 0 if text in ("0", "background") else ontology.by_name(text).id

    def _spacing(self) -> tuple[float, ...]:
        layer = self.labels_layer()
        return tuple(float(s) for s in layer.scale[-3:]) if layer is not None else (1.0, 1.0, 1.0)

    def _op(self, name: str, fn, *args, **kwargs) -> int:
        layer = self.labels_layer()
        if layer is None:
            self.status.setText("No labels layer.")
            return 0
        try:
            new = fn(np.asarray(layer.data), *args, locked=self.locked_ids(), **kwargs)
        except (ValueError, KeyError) as exc:
            self.status.setText(f"{name}: {exc}")
            return 0
        return self.apply(new, name)

    def apply(self, new: np.ndarray, name: str) -> int:
        """Write an operation's result to the layer (undoable), journal it, re-validate."""
        layer = self.labels_layer()
        old = np.asarray(layer.data)
        changed = np.nonzero(new != old)
        n = int(changed[0].size)
        if n:
            layer.data_setitem(changed, new[changed])
            self.session(layer).commit(layer.data, name)
            self._fill_locks()
        self.status.setText(f"{name}: {n} voxels changed" if n else f"{name}: nothing to change")
        self.validate()
        return n

    def shift(self, offset: int) -> int:
        """Shift every level (or those from the chosen one) by ``offset``; landmarks follow."""
        start = None if self.from_level.currentIndex() == 0 else self.from_level.currentText()
        layer = self.labels_layer()
        if layer is None:
            return 0
        points = self._landmark_layer(layer)
        try:
            if points is not None:
                lm = Landmarks(np.asarray(points.data), np.asarray(points.features["structure_id"]),
                               tuple(str(n) for n in points.features["name"]))
                new, lm2 = corr.shift_levels(np.asarray(layer.data), offset, start, landmarks=lm,
                                             locked=self.locked_ids())
            else:
                new = corr.shift_levels(np.asarray(layer.data), offset, start, locked=self.locked_ids())
        except ValueError as exc:
            self.status.setText(f"Shift: {exc}")
            return 0
        n = self.apply(new, f"shift levels {offset:+d}" + (f" from {start}" if start else ""))
        if points is not None and n:
            feats = points.features.copy()
            feats["structure_id"] = lm2.structure_ids
            feats["name"] = list(lm2.names)
            feats["structure"] = [ontology.name_of(i) for i in lm2.structure_ids]
            points.features = feats
            points.face_color = [ontology.color_of(i) if i in ontology.BY_ID else (1, 1, 1, 1)
                                 for i in lm2.structure_ids]
        return n

    def _landmark_layer(self, labels_layer):
        from napari.layers import Points

        case = case_from_layer(labels_layer)
        for ly in self.viewer.layers:
            if isinstance(ly, Points) and "structure_id" in ly.features and (
                    case is None or case_from_layer(ly) is case):
                return ly
        return None

    def split_at_plane(self) -> int:
        """Split structure A along the plane given by a 'split plane' points layer (1-2 points)."""
        from napari.layers import Points

        layer = self.labels_layer()
        plane = next((ly for ly in self.viewer.layers if isinstance(ly, Points) and ly.name == "split plane"), None)
        if layer is None or plane is None or len(plane.data) == 0:
            if layer is not None and plane is None:
                self.viewer.add_points(np.empty((0, 3)), name="split plane", scale=layer.scale,
                                       translate=layer.translate, face_color="red", size=4)
                self.viewer.layers.selection.active = layer
            self.status.setText("Place one or two points on the split line in the sagittal view "
                                "(layer 'split plane'), then split again.")
            return 0
        pts = np.asarray([layer.world_to_data(plane.data_to_world(p)) for p in plane.data])[:, -3:]
        if len(pts) >= 2:
            d = pts[1] - pts[0]
            normal = np.array([0.0, -d[2], d[1]])  # perpendicular to the line, in the sagittal plane
            if normal[1] < 0:
                normal = -normal  # the part below (inferior) becomes B
        else:
            normal = np.array([0.0, 1.0, 0.0])
        new = corr.split_by_plane(np.asarray(layer.data), self._id_a(), pts[0], normal, self._id_b(),
                                  self._spacing())
        return self.apply(new, "split")

    def revert_structure(self) -> int:
        layer = self.labels_layer()
        s = self.session(layer)
        if s is None:
            return 0
        return self.apply(s.revert(layer.data, self._id_a()), f"revert {self.struct_a.currentText()}")

    # -- painting -----------------------------------------------------------------------
    def _schedule_commit(self, event: Any = None) -> None:
        self._after_paint.start()

    def _commit_paint(self) -> None:
        layer = self.labels_layer()
        s = self.session(layer)
        if layer is None or s is None:
            return
        locked = self.locked_ids()
        if locked:  # painting may not change a locked structure: put its voxels back
            data = np.asarray(layer.data)
            hit = np.nonzero(np.isin(s.recorded, locked) & (data != s.recorded))
            if hit[0].size:
                data[hit] = s.recorded[hit]
                layer.refresh()
                self.status.setText(f"{hit[0].size} voxels of locked structures kept")
        if s.commit(layer.data, "paint"):  # journaled at once; checks once painting pauses
            self._recheck.start()

    def _after_edits(self) -> None:
        self._fill_locks()
        self.validate()

    # -- validator ----------------------------------------------------------------------
    def validate(self) -> list[corr.Finding]:
        layer = self.labels_layer()
        self.problems.clear()
        if layer is None:
            self.findings = []
            return []
        self.findings = corr.validate_sequence(np.asarray(layer.data), self._spacing())
        for f in self.findings:
            item = QListWidgetItem(f"{'Error' if f.severity == 'error' else 'Check'}: {f.message}")
            item.setForeground(Qt.GlobalColor.red if f.severity == "error" else Qt.GlobalColor.yellow)
            self.problems.addItem(item)
        if not self.findings:
            self.problems.addItem(QListWidgetItem("No problems found in the level sequence."))
        return self.findings

    def jump_to(self, row: int) -> tuple[float, ...] | None:
        """Move the view to a validator finding (its sagittal slice and centre)."""
        if not 0 <= row < len(self.findings):
            return None
        layer = self.labels_layer()
        return center_view_on(self.viewer, layer, self.findings[row].position)

    # -- journal and saving -------------------------------------------------------------
    def restore_pending(self) -> int:
        """Apply the edits recorded for this case in an earlier (crashed) session."""
        layer = self.labels_layer()
        s = self.session(layer)
        if s is None or s.journal is None or not s.pending:
            return 0
        restored = s.restore()  # already in the journal: applying them records nothing new
        self.restore_btn.setVisible(False)
        return self.apply(restored, "restore unsaved edits")

    def decline_restore(self) -> None:
        """Throw away the edits of an earlier session (they never come back)."""
        s = self.session()
        if s is not None:
            s.decline()
        self.restore_btn.setVisible(False)

    def save_labels(self, path: str | Path | None = None) -> Path | None:
        layer = self.labels_layer()
        case = case_from_layer(layer) if layer is not None else None
        if case is None:
            self.status.setText("This labels layer does not belong to a spine case.")
            return None
        self.output.mkdir(parents=True, exist_ok=True)
        target = Path(path) if path else self.output / f"{case.case_id.replace('/', '_')}_labels.nii.gz"
        try:
            res = export_labels(case, np.asarray(layer.data), target, scheme=self.scheme.currentText())
        except Exception as exc:  # shown, never raised into Qt
            self.status.setText(f"Not saved: {exc}")
            return None
        s = self.session(layer)
        s.commit(layer.data, "save")
        if s.journal is not None:
            s.journal.close()
        self.status.setText(f"Saved and verified {res.path} ({len(res.counts)} structures, {res.scheme} ids)")
        return res.path

    def save_landmarks(self) -> list[Path]:
        """Save the case's landmarks (as shown, after any shift) as JSON and CSV."""
        from ._writer import write_landmarks

        layer = self.labels_layer()
        points = self._landmark_layer(layer) if layer is not None else None
        if points is None:
            self.status.setText("No landmarks layer for this case.")
            return []
        case = case_from_layer(points)
        self.output.mkdir(parents=True, exist_ok=True)
        stem = (case.case_id if case is not None else points.name).replace("/", "_")
        out = []
        try:
            for ext in (".json", ".csv"):
                out += [Path(p) for p in write_landmarks(str(self.output / f"{stem}_landmarks{ext}"), points.data,
                                                         {"metadata": points.metadata, "features": points.features})]
        except Exception as exc:
            self.status.setText(f"Landmarks not saved: {exc}")
            return []
        self.status.setText(f"Saved {', '.join(p.name for p in out)}")
        return out

    def add_to_training(self) -> int:
        layer = self.labels_layer()
        case = case_from_layer(layer) if layer is not None else None
        if case is None:
            self.status.setText("This labels layer does not belong to a spine case.")
            return len(self.training)
        self.training = [c for c in self.training if c.case_id != case.case_id]
        self.training.append(case.with_labels(np.array(layer.data, copy=True)))
        self.nnunet_btn.setText(f"Export nnU-Net dataset ({len(self.training)} cases)")
        return len(self.training)

    def export_training(self, dataset_id: int = 500, name: str = "SpineCorrected") -> Path | None:
        if not self.training:
            self.status.setText("Add corrected cases to the training set first.")
            return None
        try:
            root = export_nnunet_dataset(self.training, self.output, dataset_id=dataset_id, name=name)
        except Exception as exc:
            self.status.setText(f"nnU-Net export failed: {exc}")
            return None
        self.status.setText(f"nnU-Net dataset written: {root}")
        return root

