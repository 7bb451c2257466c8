"""The "Spine dataset" dock widget: open a dataset folder, browse its cases, load them.

Detection, listing and loading are the core's (:mod:`napari_spine.datasets`); loading
runs in a thread worker with a progress indicator, and the previous case's layers are
replaced unless pinned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QShortcut,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..datasets import CaseRef, Dataset, open_dataset
from ..datasets.base import load_ref
from ..errors import SpineIOError
from ._layers import case_to_layer_data

if TYPE_CHECKING:
    import napari


@dataclass(frozen=True)
class _Failure:
    error: Exception


class DatasetWidget(QWidget):
    """Browse and load the cases of MMCSD, CSpineSeg, CTSpine1K, SSMSpine or Spine-MSCA."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.dataset: Dataset | None = None
        self.visible_cases: list[CaseRef] = []
        self.current: CaseRef | None = None
        self.loaded_layers: list = []
        self._worker = None
        self.setAcceptDrops(True)

        self.path = QLineEdit()
        self.path.setPlaceholderText("Dataset folder, file or archive (or drop one here)")
        self.path.returnPressed.connect(lambda: self.open(self.path.text()))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        self.kind = QLabel("No dataset open.")
        self.kind.setWordWrap(True)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #9aa0a6;")
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #ffae42;")
        self.warnings.setVisible(False)

        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter cases (id or metadata)")
        self.filter.textChanged.connect(lambda _t: self._fill_table())
        self.split = QComboBox()
        self.split.addItem("all")
        self.split.currentTextChanged.connect(lambda _t: self._fill_table())

        self.table = QTableWidget(0, 3)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellDoubleClicked.connect(lambda row, _c: self.load_row(row))

        self.sequence = QComboBox()
        self.sequence.setToolTip("MMCSD sequence or SSMSpine image variant")
        self.sequence.setVisible(False)
        self.pin = QCheckBox("Keep previous case")
        self.pin.setToolTip("Pinned: loading a case adds layers instead of replacing the last case's")
        self.load_btn = QPushButton("Load")
        self.load_btn.clicked.connect(lambda: self.load_row(self.table.currentRow()))
        self.prev_btn = QPushButton("< Previous")
        self.prev_btn.setToolTip("Previous case (Alt+Up)")
        self.prev_btn.clicked.connect(self.previous_case)
        self.next_btn = QPushButton("Next >")
        self.next_btn.setToolTip("Next case (Alt+Down)")
        self.next_btn.clicked.connect(self.next_case)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.metadata = QTextBrowser()
        self.metadata.setMaximumHeight(180)

        for keys, slot in (("Alt+Down", self.next_case), ("Alt+Up", self.previous_case)):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(slot)

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        for w in (self.kind, self.notes, self.warnings):
            layout.addWidget(w)
        row = QHBoxLayout()
        row.addWidget(self.filter, 1)
        row.addWidget(self.split)
        layout.addLayout(row)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.sequence)
        row.addWidget(self.pin)
        layout.addLayout(row)
        row = QHBoxLayout()
        for b in (self.prev_btn, self.load_btn, self.next_btn):
            row.addWidget(b)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Case metadata"))
        layout.addWidget(self.metadata)

    # -- opening -----------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a spine dataset folder")
        if folder:
            self.open(folder)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        urls = event.mimeData().urls()
        if urls:
            self.open(urls[0].toLocalFile())

    def open(self, path: str | Path) -> Dataset | None:
        """Detect and list a dataset; errors are shown, never raised into Qt."""
        self.path.setText(str(path))
        try:
            ds = open_dataset(path)
        except SpineIOError as exc:
            self.dataset = None
            self.kind.setText(f"Not opened: {exc}")
            self.table.setRowCount(0)
            return None
        self.dataset = ds
        counts = ", ".join(f"{k} {v}" for k, v in ds.split_counts().items())
        self.kind.setText(f"<b>{ds.adapter.title}</b><br>{len(ds)} cases ({counts}) in {ds.root}")
        self.notes.setText("Assumed: " + " ".join(ds.adapter.assumptions) if ds.adapter.assumptions else "")
        self.warnings.setText("\n".join(ds.warnings))
        self.warnings.setVisible(bool(ds.warnings))
        self.split.blockSignals(True)
        self.split.clear()
        self.split.addItems(["all", *ds.split_counts()])
        self.split.blockSignals(False)
        self.sequence.clear()
        self.sequence.addItems(list(ds.adapter.sequence_choices))
        self.sequence.setVisible(bool(ds.adapter.sequence_choices))
        self._fill_table()
        return ds

    def _fill_table(self) -> None:
        ds = self.dataset
        if ds is None:
            return
        self.visible_cases = ds.filter(self.filter.text(), self.split.currentText())
        cols = ["case", "split", "labels", *ds.adapter.columns]
        self.table.setColumnCount(len(cols))
        self.table.setHorizontalHeaderLabels(cols)
        self.table.setRowCount(len(self.visible_cases))
        for r, ref in enumerate(self.visible_cases):
            values = [ref.case_id, ref.split, "yes" if ref.has_labels else "no",
                      *(str(ref.metadata.get(c, "")) for c in ds.adapter.columns)]
            for c, v in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(v))
        if self.visible_cases:
            self.table.selectRow(0)

    # -- loading -----------------------------------------------------------------------
    def load_row(self, row: int) -> None:
        if 0 <= row < len(self.visible_cases):
            self.table.selectRow(row)
            self.load(self.visible_cases[row])

    def next_case(self) -> None:
        self._step(+1)

    def previous_case(self) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        if not self.visible_cases:
            return
        idx = self.visible_cases.index(self.current) if self.current in self.visible_cases else -1
        self.load_row(min(max(idx + delta, 0), len(self.visible_cases) - 1))

    def _read(self, ref: CaseRef, choice: str) -> list | _Failure:
        """Runs in the worker thread. A failure is returned (wrapped: the thread worker
        re-raises returned exceptions), so that it is reported in the panel instead of
        escaping into the Qt event loop."""
        ds = self.dataset
        assert ds is not None
        try:
            if choice == "all":
                return list(ds.adapter.load_sequences(ref).values())
            return [load_ref(ds.adapter, ref, choice or None)]
        except Exception as exc:  # shown to the user with the file and the problem
            return _Failure(exc)

    def load(self, ref: CaseRef) -> None:
        """Load a case in a background worker; its layers replace the previous case's."""
        from napari.qt.threading import create_worker

        if self._worker is not None:
            return  # one load at a time
        choice = self.sequence.currentText() if self.sequence.count() else ""
        self.progress.setVisible(True)
        self.status.setText(f"Loading {ref.case_id}...")
        worker = create_worker(self._read, ref, choice, _progress={"total": 0, "desc": f"Loading {ref.case_id}"})
        worker.returned.connect(
            lambda res: self._failed(ref, res.error) if isinstance(res, _Failure) else self._show(ref, res)
        )
        worker.finished.connect(self._done)
        self._worker = worker
        worker.start()

    def _done(self) -> None:
        self._worker = None
        self.progress.setVisible(False)

    def _failed(self, ref: CaseRef, exc: Exception) -> None:
        from napari.utils.notifications import show_error

        self.status.setText(f"Could not load {ref.case_id}: {exc}")
        show_error(f"Could not load {ref.case_id}: {exc}")

    def _show(self, ref: CaseRef, cases: list) -> None:
        specs = [spec for case in cases
                 for spec in case_to_layer_data(case, image_name=f"{case.case_id} {case.modality}")]
        if not self.pin.isChecked() and self._reuse(specs):
            added = list(self.loaded_layers)
        else:
            if not self.pin.isChecked():
                for layer in self.loaded_layers:
                    if layer in self.viewer.layers:
                        self.viewer.layers.remove(layer)
                self.loaded_layers = []
            added = [getattr(self.viewer, f"add_{kind}")(data, **kwargs) for data, kwargs, kind in specs]
            self.loaded_layers.extend(added)
        self.current = ref
        if added:
            self.viewer.layers.selection.active = added[0]
            self.viewer.reset_view()
        warns = sorted({w for c in cases for w in c.warnings})
        self.status.setText(f"Loaded {ref.case_id}" + (f" - {'; '.join(warns)}" if warns else ""))
        self._show_metadata(ref, cases)

    def _reuse(self, specs: list[tuple]) -> bool:
        """Put the next case into the previous case's layers when they match one to one.

        Creating napari layers (and their GL visuals) costs most of a case switch; updating
        data, geometry and features in place avoids it.
        """
        from napari.layers import Image, Labels, Points

        kinds = {"image": Image, "labels": Labels, "points": Points}
        layers = self.loaded_layers
        if len(layers) != len(specs) or not all(
            kind in kinds and isinstance(ly, kinds[kind]) and ly in self.viewer.layers
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
                ly.contrast_limits_range = (min(lo, ly.contrast_limits_range[0]), max(hi, ly.contrast_limits_range[1]))
                ly.contrast_limits = kw["contrast_limits"]
            elif kind == "labels":
                ly.features = kw["features"]
                # the undo history belongs to the previous case: toggling editability is
                # napari's public way to clear it (it also leaves paint mode)
                ly.editable = False
                ly.editable = True
            else:
                ly.features = kw["features"]
                ly.face_color = kw["face_color"]
        return True

    def _show_metadata(self, ref: CaseRef, cases: list) -> None:
        rows: list[tuple[str, Any]] = [("case", ref.case_id), ("split", ref.split),
                                       ("labels", "yes" if ref.has_labels else "none")]
        rows += [(k, v) for k, v in ref.metadata.items()]
        for c in cases:
            sp = " x ".join(f"{s:.3g}" for s in c.spacing)
            rows.append((c.modality, f"{c.shape}, {sp} mm, file {''.join(c.source.axcodes)}"))
        html = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
        self.metadata.setHtml(f"<table>{html}</table>")
