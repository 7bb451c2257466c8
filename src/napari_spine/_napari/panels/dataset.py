"""The "Spine dataset" dock widget: open a dataset folder, browse its cases, load them.

Detection, listing and loading are the core's (:mod:`napari_spine.datasets`); loading runs
in a background :class:`Task` with a progress indicator, and the previous case's layers are
replaced (in place when they match) unless pinned.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ...datasets import CaseRef, Dataset, open_dataset
from ...datasets.base import load_ref
from ...errors import SpineIOError
from .._keys import attach, tooltip
from .._workers import Task
from .._workspace import Workspace
from ._common import note, scrolling, side_by_side

if TYPE_CHECKING:
    import napari


class DatasetWidget(QWidget):
    """Browse and load the cases of MMCSD, CSpineSeg, CTSpine1K, SSMSpine or Spine-MSCA.

    Shift+Alt+Right / Shift+Alt+Left load the next / previous case (napari actions, see
    :mod:`napari_spine._napari._keys`).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.ws = Workspace(napari_viewer)
        self.dataset: Dataset | None = None
        self.visible_cases: list[CaseRef] = []
        self.current: CaseRef | None = None
        self.setAcceptDrops(True)
        layout = scrolling(self)
        self._build_browser(layout)
        self._build_loader(layout)
        self.task = Task(progress=self.progress, status=self.status, buttons=(self.load_btn,))
        attach(self, "dataset")
        self.prev_btn.setToolTip(tooltip("Previous case", "napari-spine:previous_dataset_case"))
        self.next_btn.setToolTip(tooltip("Next case", "napari-spine:next_dataset_case"))

    # -- building ----------------------------------------------------------------------
    def _build_browser(self, layout: QVBoxLayout) -> None:
        self.path = QLineEdit()
        self.path.setPlaceholderText("Dataset folder, file or archive (or drop one here)")
        self.path.returnPressed.connect(lambda: self.open(self.path.text()))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        self.kind = note("No dataset open.")
        self.notes = note(style="color: #9aa0a6;")
        self.warnings = note(style="color: #ffae42;")
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
        layout.addWidget(side_by_side((self.path, 1), browse))
        for w in (self.kind, self.notes, self.warnings):
            layout.addWidget(w)
        layout.addWidget(side_by_side((self.filter, 1), self.split))
        layout.addWidget(self.table, 1)

    def _build_loader(self, layout: QVBoxLayout) -> None:
        self.sequence = QComboBox()
        self.sequence.setToolTip("MMCSD sequence or SSMSpine image variant")
        self.sequence.setVisible(False)
        self.pin = QCheckBox("Keep previous case")
        self.pin.setToolTip("Pinned: loading a case adds layers instead of replacing the last case's")
        self.load_btn = QPushButton("Load")
        self.load_btn.clicked.connect(lambda: self.load_row(self.table.currentRow()))
        self.prev_btn = QPushButton("< Previous")
        self.prev_btn.clicked.connect(self.previous_case)
        self.next_btn = QPushButton("Next >")
        self.next_btn.clicked.connect(self.next_case)
        self.progress = QProgressBar()
        self.status = note()
        self.metadata = QTextBrowser()
        self.metadata.setMaximumHeight(180)
        layout.addWidget(side_by_side(self.sequence, self.pin))
        layout.addWidget(side_by_side(self.prev_btn, self.load_btn, self.next_btn))
        for w in (self.progress, self.status, QLabel("Case metadata"), self.metadata):
            layout.addWidget(w)

    # -- opening -----------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a spine dataset folder")
        if folder:
            self.open(folder)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Accept a dropped file or folder."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Open the first dropped file or folder."""
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
        """Load the case in a row of the (filtered) table."""
        if 0 <= row < len(self.visible_cases):
            self.table.selectRow(row)
            self.load(self.visible_cases[row])

    def next_case(self) -> None:
        """Load the case below the current one."""
        self._step(+1)

    def previous_case(self) -> None:
        """Load the case above the current one."""
        self._step(-1)

    def _step(self, delta: int) -> None:
        if not self.visible_cases:
            return
        idx = self.visible_cases.index(self.current) if self.current in self.visible_cases else -1
        self.load_row(min(max(idx + delta, 0), len(self.visible_cases) - 1))

    def load(self, ref: CaseRef) -> None:
        """Load a case in the background; its layers replace the previous case's."""
        ds = self.dataset
        if ds is None or not self.ws.may_replace(keep=self.pin.isChecked()):
            return  # the annotator kept the case on show (unsaved edits)
        choice = self.sequence.currentText() if self.sequence.count() else ""

        def read() -> list:
            if choice == "all":
                return list(ds.adapter.load_sequences(ref).values())
            return [load_ref(ds.adapter, ref, choice or None)]

        self.task.start(read, desc=f"Loading {ref.case_id}", done=lambda cases: self._show(ref, cases),
                        failed=lambda exc: self._failed(ref, exc))

    def _failed(self, ref: CaseRef, exc: BaseException) -> str:
        from napari.utils.notifications import show_error

        show_error(f"Could not load {ref.case_id}: {exc}")
        return f"Could not load {ref.case_id}: {exc}"

    def _show(self, ref: CaseRef, cases: list) -> str:
        added = self.ws.show_cases(cases, keep=self.pin.isChecked())
        self.current = ref
        if added:
            self.viewer.layers.selection.active = added[0]
            self.viewer.reset_view()
        self._show_metadata(ref, cases)
        warns = sorted({w for c in cases for w in c.warnings})
        return f"Loaded {ref.case_id}" + (f" - {'; '.join(warns)}" if warns else "")

    def _show_metadata(self, ref: CaseRef, cases: list) -> None:
        rows: list[tuple[str, Any]] = [("case", ref.case_id), ("split", ref.split),
                                       ("labels", "yes" if ref.has_labels else "none")]
        rows += [(k, v) for k, v in ref.metadata.items()]
        for c in cases:
            sp = " x ".join(f"{s:.3g}" for s in c.spacing)
            rows.append((c.modality, f"{c.shape}, {sp} mm, file {''.join(c.source.axcodes)}"))
        html = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
        self.metadata.setHtml(f"<table>{html}</table>")

