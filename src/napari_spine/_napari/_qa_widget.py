"""The "Spine QA review" dock widget: compare two labellings level by level, decide, persist.

Metrics come from :mod:`napari_spine.qa` (computed in a thread worker), decisions go to
the SQLite review database (:mod:`napari_spine.qa.review`), reports to CSV/HTML.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..correction import validate_sequence
from ..qa import identification_rate, level_metrics
from ..qa.metrics import LevelRow
from ..qa.report import CaseResult, mid_sagittal_snapshot, write_csv, write_html
from ..qa.review import STATUSES, ReviewConflict, ReviewDB, ReviewDBError
from ._layers import case_from_layer, center_view_on

if TYPE_CHECKING:
    import napari

COLUMNS = ("level", "Dice", "HD95 mm", "identified", "vol. diff mL", "flag", "comment")


def triage_score(rows: list[LevelRow], n_errors: int) -> float:
    """Higher = review sooner: low Dice, unidentified levels and validator errors."""
    if not rows:
        return float(n_errors)
    worst = min(r.dice for r in rows)
    ident = identification_rate(rows)
    return (1.0 - worst) + (0.0 if math.isnan(ident) else 1.0 - ident) + 0.5 * n_errors


class QAWidget(QWidget):
    """Per-level comparison, review decisions and reports."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.rows: list[LevelRow] = []
        self.findings: list = []
        self.db: ReviewDB | None = None
        self.current: Any = None  # CaseReview being reviewed
        self._worker = None

        self.reference = QComboBox()
        self.candidate = QComboBox()
        refresh = QPushButton("Refresh layers")
        refresh.clicked.connect(self._fill_layer_choices)
        self.compute_btn = QPushButton("Compare")
        self.compute_btn.clicked.connect(lambda: self.compute())
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellClicked.connect(lambda row, _c: self.jump_to_row(row))
        self.checks = QListWidget()
        self.checks.setMaximumHeight(90)

        self.db_path = QLineEdit(str(Path.home() / "napari-spine" / "review.sqlite"))
        self.reviewer = QLineEdit()
        self.reviewer.setPlaceholderText("your name")
        self.status = QComboBox()
        self.status.addItems(list(STATUSES))
        self.comment = QLineEdit()
        self.save_btn = QPushButton("Save review")
        self.save_btn.clicked.connect(lambda: self.save_review())
        self.queue_path = QLineEdit()
        self.queue_path.setPlaceholderText("Dataset folder to add to the queue")
        self.queue_btn = QPushButton("Add to queue")
        self.queue_btn.clicked.connect(lambda: self.queue_dataset(self.queue_path.text()))
        self.loaded_layers: list = []
        self.queue = QListWidget()
        self.queue.setMaximumHeight(110)
        self.queue.itemDoubleClicked.connect(lambda item: self.select_case(item.data(Qt.ItemDataRole.UserRole)))
        self.prev_btn = QPushButton("< Previous")
        self.prev_btn.clicked.connect(lambda: self.step_queue(-1))
        self.next_btn = QPushButton("Next >")
        self.next_btn.clicked.connect(lambda: self.step_queue(+1))
        self.report_btn = QPushButton("Write report (CSV + HTML)")
        self.report_btn.clicked.connect(lambda: self.write_report())
        self.message = QLabel("")
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        g = QGroupBox("Compare")
        f = QFormLayout(g)
        f.addRow("Reference", self.reference)
        f.addRow("Candidate", self.candidate)
        row = QHBoxLayout()
        row.addWidget(refresh)
        row.addWidget(self.compute_btn)
        f.addRow(row)
        f.addRow(self.progress)
        f.addRow(self.summary)
        layout.addWidget(g)
        layout.addWidget(self.table, 1)
        layout.addWidget(QLabel("Level-sequence checks of the candidate"))
        layout.addWidget(self.checks)
        g = QGroupBox("Review")
        f = QFormLayout(g)
        f.addRow("Database", self.db_path)
        f.addRow("Reviewer", self.reviewer)
        f.addRow("Status", self.status)
        f.addRow("Comment", self.comment)
        f.addRow(self.save_btn)
        qrow = QHBoxLayout()
        qrow.addWidget(self.queue_path, 1)
        qrow.addWidget(self.queue_btn)
        f.addRow(qrow)
        f.addRow(QLabel("Queue (most suspicious first; double-click to review)"))
        f.addRow(self.queue)
        nav = QHBoxLayout()
        nav.addWidget(self.prev_btn)
        nav.addWidget(self.next_btn)
        f.addRow(nav)
        f.addRow(self.report_btn)
        f.addRow(self.message)
        layout.addWidget(g)

        self.viewer.layers.events.inserted.connect(self._fill_layer_choices)
        self.viewer.layers.events.removed.connect(self._fill_layer_choices)
        self._fill_layer_choices()

    # -- layers -------------------------------------------------------------------------
    def _labels_layers(self) -> list:
        from napari.layers import Labels

        return [ly for ly in self.viewer.layers if isinstance(ly, Labels) and ly.name != "disagreement"]

    def _fill_layer_choices(self, *_: Any) -> None:
        names = [ly.name for ly in self._labels_layers()]
        for cb, default in ((self.reference, 0), (self.candidate, 1)):
            keep = cb.currentText()
            cb.blockSignals(True)
            cb.clear()
            cb.addItems(names)
            if keep in names:
                cb.setCurrentText(keep)
            elif len(names) > default:
                cb.setCurrentIndex(default)
            cb.blockSignals(False)

    def _layer(self, name: str):
        return next((ly for ly in self._labels_layers() if ly.name == name), None)

    # -- comparing ----------------------------------------------------------------------
    def compute(self, sync: bool = False) -> None:
        """Compare reference and candidate (in a worker unless ``sync``)."""
        ref, cand = self._layer(self.reference.currentText()), self._layer(self.candidate.currentText())
        if ref is None or cand is None:
            self.summary.setText("Choose a reference and a candidate labels layer.")
            return
        if ref.data.shape != cand.data.shape or not np.allclose(ref.scale, cand.scale):
            self.summary.setText(f"Not compared: '{ref.name}' {ref.data.shape} and '{cand.name}' "
                                 f"{cand.data.shape} are not on the same grid.")
            return
        a, b = np.asarray(ref.data), np.asarray(cand.data)
        spacing = tuple(float(s) for s in ref.scale[-3:])

        def work():
            rows = level_metrics(a, b, spacing)
            return rows, validate_sequence(b, spacing)

        if sync:
            self._show(*work())
            return
        from napari.qt.threading import create_worker

        self.progress.setVisible(True)
        worker = create_worker(work, _progress={"total": 0, "desc": "Comparing labels"})
        worker.returned.connect(lambda res: self._show(*res))
        worker.finished.connect(lambda: self.progress.setVisible(False))
        self._worker = worker
        worker.start()

    def _show(self, rows: list[LevelRow], findings: list) -> None:
        self.rows = sorted(rows, key=lambda r: (r.dice, -(r.hd95_mm if not math.isnan(r.hd95_mm) else 1e9)))
        self.findings = findings
        flags = self.db.levels(self.current.case_key) if (self.db and self.current) else {}
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            flag, comment = flags.get(r.structure_id, (False, ""))
            vals = [r.name, f"{r.dice:.3f}", "" if math.isnan(r.hd95_mm) else f"{r.hd95_mm:.1f}",
                    "" if r.identified is None else ("yes" if r.identified else "NO"),
                    f"{r.volume_diff_ml:+.2f}"]
            for c, v in enumerate(vals):
                item = QTableWidgetItem(v)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if c == 1 and r.dice < 0.8:
                    item.setForeground(Qt.GlobalColor.red)
                self.table.setItem(i, c, item)
            fl = QTableWidgetItem("")
            fl.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            fl.setCheckState(Qt.CheckState.Checked if flag else Qt.CheckState.Unchecked)
            self.table.setItem(i, 5, fl)
            self.table.setItem(i, 6, QTableWidgetItem(comment))
        self.checks.clear()
        for f in findings:
            self.checks.addItem(QListWidgetItem(f"{f.severity}: {f.message}"))
        ident = identification_rate(self.rows)
        mean = np.mean([r.dice for r in self.rows]) if self.rows else math.nan
        self.summary.setText(f"{len(self.rows)} levels, mean Dice {mean:.3f}, identification rate "
                             f"{ident:.2f}, {sum(f.severity == 'error' for f in findings)} sequence errors")
        self._overlay()

    def _overlay(self) -> None:
        from napari.utils.colormaps import DirectLabelColormap

        ref, cand = self._layer(self.reference.currentText()), self._layer(self.candidate.currentText())
        a, b = np.asarray(ref.data), np.asarray(cand.data)
        dis = np.zeros(a.shape, np.uint8)
        dis[(a > 0) & (a != b)] = 1  # missed: reference only (false negative)
        dis[(b > 0) & (a != b)] = 2  # extra: candidate only (false positive)
        cmap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: (0.2, 0.4, 1.0, 1.0),
                                               2: (1.0, 0.2, 0.2, 1.0)})
        if "disagreement" in self.viewer.layers:
            self.viewer.layers["disagreement"].data = dis
        else:
            self.viewer.add_labels(dis, name="disagreement", scale=ref.scale, translate=ref.translate,
                                   colormap=cmap, opacity=0.8,
                                   features={"index": [0, 1, 2], "name": ["agree", "missed (FN)", "extra (FP)"]})

    def jump_to_row(self, row: int) -> tuple[float, ...] | None:
        """Move the view to the level in a table row (reference centroid, else candidate)."""
        if not 0 <= row < len(self.rows):
            return None
        sid = self.rows[row].structure_id
        for name in (self.reference.currentText(), self.candidate.currentText()):
            layer = self._layer(name)
            pts = np.argwhere(np.asarray(layer.data) == sid) if layer is not None else []
            if len(pts):
                return center_view_on(self.viewer, layer, pts.mean(axis=0))
        return None

    # -- review database ----------------------------------------------------------------
    def open_db(self) -> ReviewDB | None:
        path = Path(self.db_path.text()).expanduser()
        if self.db is not None and self.db.path == path:
            return self.db
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = ReviewDB(path)
        except (ReviewDBError, OSError) as exc:
            self.message.setText(str(exc))
            self.db = None
        return self.db

    def case_key(self) -> str | None:
        layer = self._layer(self.reference.currentText()) or self._layer(self.candidate.currentText())
        case = case_from_layer(layer) if layer is not None else None
        if case is None:
            return layer.name if layer is not None else None
        return f"{case.dataset}/{case.case_id}"

    def select_case(self, key: str) -> None:
        """Make ``key`` the case under review; claims it when a reviewer name is set."""
        db = self.open_db()
        if db is None:
            return
        try:
            self.current = db.get(key)
            reviewer = self.reviewer.text().strip()
            if reviewer and self.current.status in ("to do", "in review"):
                self.current = db.claim(key, reviewer)
        except KeyError:
            return
        except ReviewConflict as exc:
            self.message.setText(f"{exc}; shown read-only")
        self.status.setCurrentText(self.current.status)
        self.comment.setText(self.current.comment)
        self.message.setText(f"Reviewing {key} (status {self.current.status})")
        self._open_source(db.source(key))

    def queue_dataset(self, path: str | Path) -> int:
        """Add every case of a dataset (or a NIfTI file) to the review queue."""
        from ..datasets import open_dataset
        from ..errors import SpineIOError

        db = self.open_db()
        if db is None:
            return 0
        try:
            ds = open_dataset(path)
        except SpineIOError as exc:
            self.message.setText(str(exc))
            return 0
        n = db.add_cases((f"{ds.kind}/{c.case_id}", ds.kind, c.case_id, 0.0,
                          {"dataset_path": str(path), "kind": ds.kind, "case_id": c.case_id})
                         for c in ds.cases)
        self._refresh_queue()
        self.message.setText(f"{len(ds)} {ds.kind} cases in the queue")
        return n

    def _open_source(self, source: dict) -> None:
        """Show the case's image and reference labels (replacing the last queued case)."""
        if not source.get("dataset_path"):
            return
        from ..datasets import open_dataset
        from ._layers import case_to_layer_data

        try:
            ds = open_dataset(source["dataset_path"], source.get("kind"))
            case = ds.load_case(source["case_id"])
        except Exception as exc:  # shown, never raised into Qt
            self.message.setText(f"Cannot open {source.get('case_id')}: {exc}")
            return
        for layer in self.loaded_layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.loaded_layers = [getattr(self.viewer, f"add_{kind}")(data, **kw)
                              for data, kw, kind in case_to_layer_data(case)]
        self._fill_layer_choices()
        from napari.layers import Labels

        labels = [ly for ly in self.loaded_layers if isinstance(ly, Labels)]
        if labels:
            self.reference.setCurrentText(labels[0].name)

    def step_queue(self, step: int) -> str | None:
        """Select the next (+1) or previous (-1) case of the queue (triage order)."""
        db = self.open_db()
        if db is None:
            return None
        keys = [c.case_key for c in db.queue()]
        if not keys:
            return None
        cur = self.current.case_key if self.current is not None and self.current.case_key in keys else None
        k = (keys.index(cur) + step) if cur is not None else 0
        key = keys[min(max(k, 0), len(keys) - 1)]
        self.select_case(key)
        self._refresh_queue()
        for i in range(self.queue.count()):
            if self.queue.item(i).data(Qt.ItemDataRole.UserRole) == key:
                self.queue.setCurrentRow(i)
        return key

    def _refresh_queue(self) -> None:
        self.queue.clear()
        if self.db is None:
            return
        for c in self.db.queue():
            item = QListWidgetItem(f"{c.case_key} [{c.status}] triage {c.triage:.2f}")
            item.setData(Qt.ItemDataRole.UserRole, c.case_key)
            self.queue.addItem(item)

    def save_review(self) -> bool:
        """Persist status, comment, level flags and the metrics snapshot for the case."""
        db = self.open_db()
        key = self.case_key()
        reviewer = self.reviewer.text().strip()
        if db is None or key is None:
            return False
        if not reviewer:
            self.message.setText("Enter your name as reviewer first.")
            return False
        dataset = key.split("/", 1)[0]
        score = triage_score(self.rows, sum(f.severity == "error" for f in self.findings))
        db.add_cases([(key, dataset, key.split("/", 1)[-1], score, None)])
        try:
            cur = db.get(key)
            if cur.claimed_by != reviewer:  # only the holder may update: claim it (refused
                cur = db.claim(key, reviewer)  # while someone else reviews it)
            status = self.status.currentText()
            self.current = db.update(key, cur.version, reviewer=reviewer, status=status,
                                     comment=self.comment.text(), release=status != "in review")
        except ReviewConflict as exc:
            self.message.setText(f"Not saved: {exc}")
            return False
        for i, r in enumerate(self.rows):
            flag = self.table.item(i, 5).checkState() == Qt.CheckState.Checked
            comment = self.table.item(i, 6).text() if self.table.item(i, 6) else ""
            if flag or comment:
                db.set_level(key, r.structure_id, flag=flag, comment=comment)
        if self.rows:
            import base64

            snap = self._snapshot()
            db.save_metrics(key, {"rows": [r.as_dict() for r in self.rows],
                                  "snapshot_png": base64.b64encode(snap).decode() if snap else None}, reviewer)
        self._refresh_queue()
        self.message.setText(f"Saved {key}: {self.current.status}")
        return True

    def write_report(self, folder: str | Path | None = None) -> tuple[Path, Path] | None:
        db = self.open_db()
        if db is None:
            return None
        out = Path(folder) if folder else db.path.parent
        results = []
        for c in db.queue():
            import base64

            snap = db.latest_metrics(c.case_key) or {}
            rows = [LevelRow(**r) for r in snap.get("rows", [])]
            png = base64.b64decode(snap["snapshot_png"]) if snap.get("snapshot_png") else None
            results.append(CaseResult(c.case_key, rows, c.status, c.reviewer or "", c.comment,
                                      db.levels(c.case_key), png))
        csv_path = write_csv(results, out / "qa_report.csv")
        html_path = write_html(results, out / "qa_report.html")
        self.message.setText(f"Report written: {html_path}")
        return csv_path, html_path

    def _snapshot(self) -> bytes | None:
        ref, cand = self._layer(self.reference.currentText()), self._layer(self.candidate.currentText())
        case = case_from_layer(ref)
        if case is None or ref is None or cand is None:
            return None
        window = (-500.0, 1300.0) if case.modality == "CT" else None
        return mid_sagittal_snapshot(case.image, np.asarray(ref.data), np.asarray(cand.data), case.spacing, window)

