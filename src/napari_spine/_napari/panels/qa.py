"""The "Spine QA review" dock widget: compare two labellings level by level, decide, persist.

The comparison is the core's (:func:`napari_spine.qa.compare.compare`: per-level metrics,
an unnumbered candidate numbered first, a constant level shift named), computed in a
background :class:`Task`; the review database, queue and keys live in
:class:`~._review_box.ReviewBox`. A comparison belongs to one case: opening another case
clears it, and layers of two different cases are never compared.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
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

from ...anatomy import ontology
from ...correction import validate_sequence
from ...display import window_limits
from ...qa import identification_rate
from ...qa.compare import Comparison, compare, load_prediction
from ...qa.metrics import LevelRow
from ...qa.overlay import DISAGREEMENT_COLORS, DISAGREEMENT_NAMES, disagreement_map, unshift
from ...qa.report import mid_sagittal_snapshot
from ...qa.triage import triage_score
from .._layers import labels_colormap, labels_features, labels_layer_data
from .._workers import Task
from .._workspace import Workspace
from ._common import note, refill, scrolling, side_by_side
from ._level_table import LevelTable
from ._review_box import ReviewBox
from .planes import planes_button

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
        self.comparison: Comparison | None = None
        self.findings: list = []
        self._compared: tuple[str, str] | None = None  # (reference, candidate) layer names
        self.derived: list = []  # layers this panel made for the case (overlay, prediction ...)
        layout = scrolling(self)
        layout.addWidget(self._compare_group())
        layout.addWidget(self.table, 1)
        layout.addWidget(QLabel("Findings"))
        layout.addWidget(self.checks)
        layout.addWidget(self.shift_btn)
        self.review = ReviewBox(self)
        layout.addWidget(self.review)
        for name in ("db_path", "reviewer", "status", "comment", "queue", "message", "queue_dataset",
                     "step_queue", "select_case", "save_review", "write_report", "open_db"):
            setattr(self, name, getattr(self.review, name))
        self.task = Task(progress=self.progress, status=self.summary, buttons=(self.compute_btn,))
        self.viewer.layers.events.inserted.connect(self._on_layers)
        self.viewer.layers.events.removed.connect(self._on_layers)
        self._fill_layer_choices()

    @property
    def db(self):
        """The open review database (None until opened)."""
        return self.review.db

    @property
    def current(self):
        """The case under review (its :class:`~napari_spine.qa.review.CaseReview`)."""
        return self.review.current

    @property
    def rows(self) -> list[LevelRow]:
        """The level rows of the comparison on show (empty when there is none)."""
        return self.comparison.rows if self.comparison is not None else []

    # -- building ----------------------------------------------------------------------
    def _compare_group(self) -> QGroupBox:
        self.reference, self.candidate = QComboBox(), QComboBox()
        for cb in (self.reference, self.candidate):  # long layer names must not widen the panel
            cb.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            cb.setMinimumContentsLength(12)
        self.reference.currentTextChanged.connect(lambda _t: self._fill_candidates())
        self.predictions = QLineEdit()
        self.predictions.setPlaceholderText("batch predict folder (optional): candidates per case")
        refresh = QPushButton("Refresh layers")
        refresh.clicked.connect(self._fill_layer_choices)
        self.compute_btn = QPushButton("Compare")
        self.compute_btn.clicked.connect(lambda: self.compute())
        self.worst_first = QCheckBox("Worst first")
        self.all_rows = QCheckBox("All structures")
        self.all_rows.setToolTip("Also the structures the reference does not have")
        for cb in (self.worst_first, self.all_rows):
            cb.toggled.connect(lambda _on: self._fill_table())
        self.progress = QProgressBar()
        self.summary = note()
        self.table = LevelTable()
        self.table.cellClicked.connect(lambda row, _c: self.jump_to_row(row))
        self.checks = QListWidget()
        self.checks.setMaximumHeight(90)
        self.checks.setWordWrap(True)
        self.shift_btn = QPushButton("Undo the level shift (new layer)")
        self.shift_btn.setToolTip("Add the candidate renumbered by the shift found, as a new layer")
        self.shift_btn.setVisible(False)
        self.shift_btn.clicked.connect(lambda: self.apply_shift())
        g = QGroupBox("Compare")
        f = QFormLayout(g)
        f.addRow("Reference", self.reference)
        f.addRow("Candidate", self.candidate)
        f.addRow("Predictions", self.predictions)
        f.addRow(side_by_side((refresh, 1), self.compute_btn))
        f.addRow(side_by_side(self.worst_first, self.all_rows, (planes_button(self.viewer), 1)))
        f.addRow(self.progress)
        f.addRow(self.summary)
        return g

    # -- layers -------------------------------------------------------------------------
    def _labels(self) -> list:
        return [ly for ly in self.ws.layers_of("labels", exclude=(OVERLAY,))]

    def _fill_layer_choices(self, *_: Any) -> None:
        refill(self.reference, [ly.name for ly in self._labels()], 0)
        self._fill_candidates()

    def _fill_candidates(self) -> None:
        others = [ly.name for ly in self._labels() if ly.name != self.reference.currentText()]
        refill(self.candidate, others, 0)  # never the reference itself

    def _on_layers(self, *_: Any) -> None:
        self._fill_layer_choices()
        present = {ly.name for ly in self._labels()}
        if self._compared is not None and not set(self._compared) <= present:
            self.clear()  # what was compared is gone: its numbers must not stay on screen

    def _pair(self) -> tuple[Any, Any]:
        return (self.ws.layer_named(self.reference.currentText(), "labels"),
                self.ws.layer_named(self.candidate.currentText(), "labels"))

    def clear(self) -> None:
        """Forget the comparison on show: table, findings, overlay and derived layers."""
        self.comparison, self.findings, self._compared = None, [], None
        self.table.setRowCount(0)
        self.checks.clear()
        self.summary.setText("")
        self.shift_btn.setVisible(False)
        for layer in self.derived:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.derived = []

    # -- comparing ----------------------------------------------------------------------
    def compute(self, sync: bool = False) -> None:
        """Compare reference and candidate (in the background unless ``sync``)."""
        ref, cand = self._pair()
        if ref is None or cand is None or ref.name == cand.name:
            self.summary.setText("Choose a reference and a different candidate labels layer.")
            return
        if ref.data.shape != cand.data.shape or not np.allclose(ref.scale, cand.scale):
            self.summary.setText(f"Not compared: '{ref.name}' {ref.data.shape} and '{cand.name}' "
                                 f"{cand.data.shape} are not on the same grid.")
            return
        rc, cc = self.ws.case_of(ref), self.ws.case_of(cand)
        if rc is not None and cc is not None and rc.key != cc.key:
            self.summary.setText(f"Not compared: '{ref.name}' is case {rc.key} and '{cand.name}' is "
                                 f"case {cc.key}.")
            return
        a, b = np.asarray(ref.data), np.asarray(cand.data)
        spacing = tuple(float(s) for s in ref.scale[-3:])
        names = (ref.name, cand.name)

        def job():  # in the worker: one contiguous copy each, then every pass over them
            ra, cb = np.ascontiguousarray(a), np.ascontiguousarray(b)
            cmp = compare(ra, cb, spacing)
            return cmp, validate_sequence(cb, spacing), disagreement_map(ra, cmp.candidate)

        self.task.start(job, desc="Comparing labels", done=lambda res: self._show(names, *res), sync=sync)

    def _show(self, names: tuple[str, str], cmp: Comparison, findings: list, dis: np.ndarray) -> str:
        self.comparison, self.findings, self._compared = cmp, findings, names
        self._fill_table()
        self.checks.clear()
        for text in [*cmp.notes, *([cmp.shift.message] if cmp.shift else []),
                     *(f"{f.severity}: {f.message}" for f in findings)]:
            self.checks.addItem(QListWidgetItem(text))
        self.shift_btn.setVisible(cmp.shift is not None)
        self._overlay(dis)
        rows = [r for r in cmp.rows if r.voxels_ref]
        ident = identification_rate(rows)
        if not cmp.comparable:
            return "Not comparable by level: " + "; ".join(cmp.notes)
        return (f"{names[1]} vs {names[0]}: {len(rows)} levels, mean Dice {cmp.mean_dice:.3f}, "
                f"identification rate {ident:.2f}, {sum(f.severity == 'error' for f in findings)} sequence errors")

    def _visible_rows(self) -> list[LevelRow]:
        rows = [r for r in self.rows if self.all_rows.isChecked() or r.voxels_ref]
        if self.worst_first.isChecked():
            return sorted(rows, key=lambda r: (r.dice, -(r.hd95_mm if not math.isnan(r.hd95_mm) else 1e9)))
        order = {sid: k for k, sid in enumerate(ontology.sort_cranio_caudal([r.structure_id for r in rows]))}
        return sorted(rows, key=lambda r: order[r.structure_id])

    def _fill_table(self) -> None:
        key = self.case_key()
        flags = self.db.levels(key) if (self.db is not None and key) else {}
        self.table.show_rows(self._visible_rows(), flags)

    def _overlay(self, dis: np.ndarray) -> None:
        from napari.utils.colormaps import DirectLabelColormap

        ref, _ = self._pair()
        layer = self.ws.put_labels(OVERLAY, dis, ref, opacity=0.9, colormap=DirectLabelColormap(
            color_dict={None: (0, 0, 0, 0), **DISAGREEMENT_COLORS}),
            features={"index": list(DISAGREEMENT_NAMES), "name": list(DISAGREEMENT_NAMES.values())})
        layer.contour = 1  # outlines: the labels underneath stay visible
        if layer not in self.derived:
            self.derived.append(layer)

    def apply_shift(self):
        """Add the candidate renumbered by the detected shift as a new layer, and pick it."""
        cmp, (_, cand) = self.comparison, self._pair()
        if cmp is None or cmp.shift is None or cand is None:
            return None
        new = self.ws.put_labels(f"{cand.name} unshifted", unshift(np.asarray(cand.data), cmp.shift), cand,
                                 metadata=dict(cand.metadata), colormap=labels_colormap(),
                                 features=labels_features(), opacity=cand.opacity)
        self.derived.append(new)
        self._fill_layer_choices()
        self.candidate.setCurrentText(new.name)
        return new

    def jump_to_row(self, row: int) -> tuple[float, ...] | None:
        """Move the view to the level in a table row (reference centroid, else candidate)."""
        rows = self._visible_rows()
        if not 0 <= row < len(rows):
            return None
        sid = rows[row].structure_id
        for layer in self._pair():
            pts = np.argwhere(np.asarray(layer.data) == sid) if layer is not None else []
            if len(pts):
                return self.ws.centre_on(layer, pts.mean(axis=0))
        return None

    def flag_at(self, world) -> int | None:
        """Toggle the flag of the reference level at a world point; returns its id."""
        ref, _ = self._pair()
        value = ref.get_value(world, world=True) if ref is not None else None
        if value is None or isinstance(value, tuple) or not int(value):
            return None
        return int(value) if self.table.toggle_flag(int(value), self._visible_rows()) else None

    # -- what the review box reads -------------------------------------------------------
    def decisions(self) -> list[tuple[int, bool, str]]:
        """The reviewer's per-level flags and comments."""
        return self.table.decisions(self._visible_rows())

    def triage(self) -> float:
        """The triage score of the comparison on show."""
        return triage_score([r for r in self.rows if r.voxels_ref], sum(f.severity == "error" for f in self.findings))

    def sources(self) -> dict:
        """What was compared, for the stored snapshot and the report."""
        ref, cand = self._pair()
        cc = self.ws.case_of(cand)
        model = (cand.metadata.get("napari_spine_prediction") or {}).get("model") if cand is not None else None
        cand_src = (cc.source.label_path or cand.name) if cc is not None and cand is not None else ""
        notes = self.comparison.notes if self.comparison else []
        shift = [self.comparison.shift.message] if self.comparison and self.comparison.shift else []
        return {"reference": ref.name if ref is not None else "",
                "candidate": f"{cand_src}" + (f" (model {model})" if model else ""),
                "findings": [*notes, *shift]}

    def case_key(self) -> str | None:
        """The compared case's key (``dataset/case id``; a plain layer's name)."""
        ref, cand = self._pair()
        layer = ref or cand
        case = self.ws.case_of(layer)
        if case is None:
            return layer.name if layer is not None else None
        return case.key

    def snapshot(self) -> bytes | None:
        """The mid-sagittal picture of the comparison on show."""
        ref, cand = self._pair()
        case = self.ws.case_of(ref)
        if case is None or cand is None or self.comparison is None:
            return None
        window = window_limits("bone") if case.modality == "CT" else None
        return mid_sagittal_snapshot(case.image, np.asarray(ref.data), self.comparison.candidate,
                                     case.spacing, window)

    # -- opening a case ----------------------------------------------------------------
    def open_source(self, source: dict) -> None:
        """Show a queued case (its layers replace the previous case's), clear the previous
        comparison and pick this case's candidate."""
        if not self.ws.may_replace():
            return  # the annotator kept the case on show (unsaved edits)
        self.clear()
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
        self.pick_candidate(case)

    def pick_candidate(self, case) -> str | None:
        """This case's prediction from the predictions folder (as a new layer), else another
        labels layer of the same case; None (and the candidate box empty) when there is none."""
        folder = self.predictions.text().strip()
        try:
            pred = load_prediction(folder, case) if folder else None
        except Exception as exc:  # noqa: BLE001 - shown, never raised into Qt
            self.message.setText(f"Prediction not loaded: {exc}")
            pred = None
        if pred is not None:
            data, kw, _ = labels_layer_data(case, pred, name=f"{case.case_id} prediction")
            self.derived.append(self.viewer.add_labels(data, **kw))
        ref = self.reference.currentText()
        mine = [ly.name for ly in self._labels() if ly.name != ref and
                (c := self.ws.case_of(ly)) is not None and c.key == case.key]
        self._fill_candidates()
        self.candidate.setCurrentIndex(self.candidate.findText(mine[-1]) if mine else -1)
        return mine[-1] if mine else None
