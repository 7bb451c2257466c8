"""The "Spine QA review" dock widget: compare two labellings level by level, decide, persist.

Metrics, triage and the disagreement map come from :mod:`napari_spine.qa` (computed in a
background :class:`Task`), decisions go to the review database
(:mod:`napari_spine.qa.review`), reports to CSV/HTML.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QWidget,
)

from ...correction import validate_sequence
from ...display import window_limits
from ...qa import identification_rate, level_metrics
from ...qa.metrics import LevelRow
from ...qa.overlay import DISAGREEMENT_COLORS, DISAGREEMENT_NAMES, disagreement_map
from ...qa.report import CaseResult, mid_sagittal_snapshot, write_csv, write_html
from ...qa.review import STATUSES, ReviewConflict, ReviewDB, ReviewDBError
from ...qa.triage import triage_score
from .._workers import Task
from .._workspace import Workspace
from ._common import note, refill, scrolling, side_by_side
from ._level_table import LevelTable

if TYPE_CHECKING:
    import napari

OVERLAY = "disagreement"

__all__ = ["QAWidget"]


class QAWidget(QWidget):
    """Per-level comparison, review decisions and reports."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.ws = Workspace(napari_viewer)
        self.rows: list[LevelRow] = []
        self.findings: list = []
        self.db: ReviewDB | None = None
        self.current: Any = None  # CaseReview being reviewed
        layout = scrolling(self)
        layout.addWidget(self._compare_group())
        layout.addWidget(self.table, 1)
        layout.addWidget(QLabel("Level-sequence checks of the candidate"))
        layout.addWidget(self.checks)
        layout.addWidget(self._review_group())
        self.task = Task(progress=self.progress, status=self.summary, buttons=(self.compute_btn,))
        self.viewer.layers.events.inserted.connect(self._fill_layer_choices)
        self.viewer.layers.events.removed.connect(self._fill_layer_choices)
        self._fill_layer_choices()

    # -- building ----------------------------------------------------------------------
    def _compare_group(self) -> QGroupBox:
        self.reference, self.candidate = QComboBox(), QComboBox()
        refresh = QPushButton("Refresh layers")
        refresh.clicked.connect(self._fill_layer_choices)
        self.compute_btn = QPushButton("Compare")
        self.compute_btn.clicked.connect(lambda: self.compute())
        self.progress = QProgressBar()
        self.summary = note()
        self.table = LevelTable()
        self.table.cellClicked.connect(lambda row, _c: self.jump_to_row(row))
        self.checks = QListWidget()
        self.checks.setMaximumHeight(90)
        g = QGroupBox("Compare")
        f = QFormLayout(g)
        f.addRow("Reference", self.reference)
        f.addRow("Candidate", self.candidate)
        f.addRow(side_by_side((refresh, 1), self.compute_btn))
        f.addRow(self.progress)
        f.addRow(self.summary)
        return g

    def _review_group(self) -> QGroupBox:
        self.db_path = QLineEdit(str(Path.home() / "napari-spine" / "review.sqlite"))
        self.reviewer = QLineEdit()
        self.reviewer.setPlaceholderText("your name")
        self.status = QComboBox()
        self.status.addItems(list(STATUSES))
        self.comment = QLineEdit()
        self.queue_path = QLineEdit()
        self.queue_path.setPlaceholderText("Dataset folder to add to the queue")
        self.queue = QListWidget()
        self.queue.setMaximumHeight(110)
        self.queue.itemDoubleClicked.connect(lambda item: self.select_case(item.data(Qt.ItemDataRole.UserRole)))
        self.message = note()
        buttons = {"save": ("Save review", lambda: self.save_review()),
                   "queue": ("Add to queue", lambda: self.queue_dataset(self.queue_path.text())),
                   "prev": ("< Previous", lambda: self.step_queue(-1)),
                   "next": ("Next >", lambda: self.step_queue(+1)),
                   "report": ("Write report (CSV + HTML)", lambda: self.write_report())}
        for key, (text, slot) in buttons.items():
            b = QPushButton(text)
            b.clicked.connect(slot)
            setattr(self, f"{key}_btn", b)
        g = QGroupBox("Review")
        f = QFormLayout(g)
        for label, w in (("Database", self.db_path), ("Reviewer", self.reviewer),
                         ("Status", self.status), ("Comment", self.comment)):
            f.addRow(label, w)
        f.addRow(self.save_btn)
        f.addRow(side_by_side((self.queue_path, 1), self.queue_btn))
        f.addRow(QLabel("Queue (most suspicious first; double-click to review)"))
        f.addRow(self.queue)
        f.addRow(side_by_side((self.prev_btn, 1), self.next_btn))
        f.addRow(self.report_btn)
        f.addRow(self.message)
        return g

    # -- layers -------------------------------------------------------------------------
    def _fill_layer_choices(self, *_: Any) -> None:
        names = [ly.name for ly in self.ws.layers_of("labels", exclude=(OVERLAY,))]
        refill(self.reference, names, 0)
        refill(self.candidate, names, 1)

    def _pair(self) -> tuple[Any, Any]:
        return (self.ws.layer_named(self.reference.currentText(), "labels"),
                self.ws.layer_named(self.candidate.currentText(), "labels"))

    # -- comparing ----------------------------------------------------------------------
    def compute(self, sync: bool = False) -> None:
        """Compare reference and candidate (in the background unless ``sync``)."""
        ref, cand = self._pair()
        if ref is None or cand is None:
            self.summary.setText("Choose a reference and a candidate labels layer.")
            return
        if ref.data.shape != cand.data.shape or not np.allclose(ref.scale, cand.scale):
            self.summary.setText(f"Not compared: '{ref.name}' {ref.data.shape} and '{cand.name}' "
                                 f"{cand.data.shape} are not on the same grid.")
            return
        a, b = np.asarray(ref.data), np.asarray(cand.data)
        spacing = tuple(float(s) for s in ref.scale[-3:])
        self.task.start(lambda: (level_metrics(a, b, spacing), validate_sequence(b, spacing)),
                        desc="Comparing labels", done=lambda res: self._show(*res), sync=sync)

    def _show(self, rows: list[LevelRow], findings: list) -> str:
        self.rows = sorted(rows, key=lambda r: (r.dice, -(r.hd95_mm if not math.isnan(r.hd95_mm) else 1e9)))
        self.findings = findings
        flags = self.db.levels(self.current.case_key) if (self.db and self.current) else {}
        self.table.show_rows(self.rows, flags)
        self.checks.clear()
        for f in findings:
            self.checks.addItem(QListWidgetItem(f"{f.severity}: {f.message}"))
        self._overlay()
        ident = identification_rate(self.rows)
        mean = np.mean([r.dice for r in self.rows]) if self.rows else math.nan
        return (f"{len(self.rows)} levels, mean Dice {mean:.3f}, identification rate {ident:.2f}, "
                f"{sum(f.severity == 'error' for f in findings)} sequence errors")

    def _overlay(self) -> None:
        from napari.utils.colormaps import DirectLabelColormap

        ref, cand = self._pair()
        dis = disagreement_map(np.asarray(ref.data), np.asarray(cand.data))
        self.ws.put_labels(OVERLAY, dis, ref, opacity=0.8,
                           colormap=DirectLabelColormap(color_dict={None: (0, 0, 0, 0), **DISAGREEMENT_COLORS}),
                           features={"index": list(DISAGREEMENT_NAMES), "name": list(DISAGREEMENT_NAMES.values())})

    def jump_to_row(self, row: int) -> tuple[float, ...] | None:
        """Move the view to the level in a table row (reference centroid, else candidate)."""
        if not 0 <= row < len(self.rows):
            return None
        sid = self.rows[row].structure_id
        for layer in self._pair():
            pts = np.argwhere(np.asarray(layer.data) == sid) if layer is not None else []
            if len(pts):
                return self.ws.centre_on(layer, pts.mean(axis=0))
        return None

    # -- review database ----------------------------------------------------------------
    def open_db(self) -> ReviewDB | None:
        """The review database at the path in the panel (opened once, errors shown)."""
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
        """The compared case's key (``dataset/case id``; a plain layer's name)."""
        ref, cand = self._pair()
        layer = ref or cand
        case = self.ws.case_of(layer)
        if case is None:
            return layer.name if layer is not None else None
        return case.key

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
        from ...datasets import open_dataset
        from ...errors import SpineIOError

        db = self.open_db()
        if db is None:
            return 0
        try:
            ds = open_dataset(path)
        except SpineIOError as exc:
            self.message.setText(str(exc))
            return 0
        n = db.add_cases((c.key, ds.kind, c.case_id, 0.0,
                          {"dataset_path": str(path), "kind": ds.kind, "case_id": c.case_id})
                         for c in ds.cases)
        self._refresh_queue()
        self.message.setText(f"{len(ds)} {ds.kind} cases in the queue")
        return n

    def _open_source(self, source: dict) -> None:
        """Show the case's image and reference labels (replacing the last queued case)."""
        if not source.get("dataset_path"):
            return
        from ...datasets import open_dataset

        try:
            case = open_dataset(source["dataset_path"], source.get("kind")).load_case(source["case_id"])
        except Exception as exc:  # shown, never raised into Qt
            self.message.setText(f"Cannot open {source.get('case_id')}: {exc}")
            return
        added = self.ws.show_cases([case])
        self._fill_layer_choices()
        labels = [ly for ly in added if ly in self.ws.layers_of("labels")]
        if labels:
            self.reference.setCurrentText(labels[0].name)

    def step_queue(self, step: int) -> str | None:
        """Select the next (+1) or previous (-1) case of the queue (triage order)."""
        db = self.open_db()
        keys = [c.case_key for c in db.queue()] if db is not None else []
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
        for c in (self.db.queue() if self.db is not None else []):
            item = QListWidgetItem(f"{c.case_key} [{c.status}] triage {c.triage:.2f}")
            item.setData(Qt.ItemDataRole.UserRole, c.case_key)
            self.queue.addItem(item)

    def save_review(self) -> bool:
        """Persist status, comment, level flags and the metrics snapshot for the case."""
        db, key, reviewer = self.open_db(), self.case_key(), self.reviewer.text().strip()
        if db is None or key is None:
            return False
        if not reviewer:
            self.message.setText("Enter your name as reviewer first.")
            return False
        score = triage_score(self.rows, sum(f.severity == "error" for f in self.findings))
        db.add_cases([(key, key.split("/", 1)[0], key.split("/", 1)[-1], score, None)])
        try:
            self.current = db.decide(key, reviewer, self.status.currentText(), self.comment.text())
        except ReviewConflict as exc:
            self.message.setText(f"Not saved: {exc}")
            return False
        for sid, flag, comment in self.table.decisions(self.rows):
            db.set_level(key, sid, flag=flag, comment=comment)
        if self.rows:
            db.save_snapshot(key, self.rows, self._snapshot(), reviewer)
        self._refresh_queue()
        self.message.setText(f"Saved {key}: {self.current.status}")
        return True

    def write_report(self, folder: str | Path | None = None) -> tuple[Path, Path] | None:
        """Write the queue's decisions and metrics as CSV and HTML (default: beside the db)."""
        db = self.open_db()
        if db is None:
            return None
        out = Path(folder) if folder else db.path.parent
        results = []
        for c in db.queue():
            rows, png = db.latest_snapshot(c.case_key)
            results.append(CaseResult(c.case_key, rows, c.status, c.reviewer or "", c.comment,
                                      db.levels(c.case_key), png))
        csv_path = write_csv(results, out / "qa_report.csv")
        html_path = write_html(results, out / "qa_report.html")
        self.message.setText(f"Report written: {html_path}")
        return csv_path, html_path

    def _snapshot(self) -> bytes | None:
        ref, cand = self._pair()
        case = self.ws.case_of(ref)
        if case is None or cand is None:
            return None
        window = window_limits("bone") if case.modality == "CT" else None
        return mid_sagittal_snapshot(case.image, np.asarray(ref.data), np.asarray(cand.data),
                                     case.spacing, window)

