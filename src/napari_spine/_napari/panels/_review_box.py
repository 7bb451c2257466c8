"""The "Review" part of the QA panel: the review database, the queue, claims, decisions,
reports and the review keys. Storage and claim rules are the core's
(:class:`~napari_spine.qa.review.ReviewDB`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
)

from ...qa.report import CaseResult, write_csv, write_html
from ...qa.review import (
    STATUSES,
    CaseReview,
    ReviewConflict,
    ReviewDB,
    ReviewDBError,
    has_password,
    is_url,
    redact,
)
from .._keys import attach, shortcut_of
from ._common import buttons, note, side_by_side

__all__ = ["KEYS", "ReviewBox"]

#: the review's napari actions -> what they do (shortcuts: :mod:`napari_spine._napari._keys`)
KEYS = {"napari-spine:qa_approve": "approve and save", "napari-spine:qa_needs_correction": "needs correction and save",
        "napari-spine:qa_flag_level": "flag the level under the cursor",
        "napari-spine:qa_next_case": "next case to do", "napari-spine:qa_previous_case": "previous case to do"}


def ask_take_over(parent, review: CaseReview) -> bool:
    """Ask before taking over another reviewer's abandoned claim."""
    since = time.strftime("%Y-%m-%d %H:%M", time.localtime(review.claimed_at or 0))
    answer = QMessageBox.question(parent, "Take over this review?",
                                  f"{review.case_key} was claimed by {review.claimed_by} at {since} and "
                                  "never finished. Take it over?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class ReviewBox(QGroupBox):
    """Database, reviewer, decision, queue (to do first, in a stable order) and reports."""

    def __init__(self, panel: Any):
        """``panel`` is the QA panel: its comparison, case opening and table."""
        super().__init__("Review")
        self.panel = panel
        self.db: ReviewDB | None = None
        self._location = ""
        self.current: CaseReview | None = None
        self.read_only = False
        self.confirm_take_over = lambda review: ask_take_over(self, review)
        self._build()
        attach(self, "qa")

    @property
    def viewer(self) -> Any:
        """The viewer of the QA panel (its shortcuts act in it)."""
        return self.panel.viewer

    def _build(self) -> None:
        self.db_path = QLineEdit(os.environ.get("NAPARI_SPINE_REVIEW_DB")
                                 or str(Path.home() / "napari-spine" / "review.sqlite"))
        self.db_path.setToolTip("An SQLite file, or the team's server: postgresql://user@host:port/db "
                                "(the password goes in ~/.pgpass or PGPASSWORD, never here)")
        self.reviewer = QLineEdit()
        self.reviewer.setPlaceholderText("your name")
        self.status = QComboBox()
        self.status.addItems(list(STATUSES))
        self.comment = QLineEdit()
        self.holder = note(style="font-weight: bold; color: #ffae42;")
        self.queue_path = QLineEdit()
        self.queue_path.setPlaceholderText("Dataset folder to add to the queue")
        self.show_all = QCheckBox("Show reviewed cases too")
        self.show_all.toggled.connect(lambda _on: self.refresh_queue())
        self.queue = QListWidget()
        self.queue.setMaximumHeight(110)
        self.queue.itemDoubleClicked.connect(lambda item: self.select_case(item.data(Qt.ItemDataRole.UserRole)))
        self.message = note()
        buttons(self, (("save_btn", "Save review", lambda: self.save_review()),
                       ("queue_btn", "Add to queue", lambda: self.queue_dataset(self.queue_path.text())),
                       ("prev_btn", "< Previous", lambda: self.previous_case()),
                       ("next_btn", "Next >", lambda: self.next_case()),
                       ("report_btn", "Write report (CSV + HTML)", lambda: self.write_report())))
        f = QFormLayout(self)
        f.addRow(self.holder)
        for label, w in (("Database", self.db_path), ("Reviewer", self.reviewer),
                         ("Status", self.status), ("Comment", self.comment)):
            f.addRow(label, w)
        f.addRow(self.save_btn)
        f.addRow(side_by_side((self.queue_path, 1), self.queue_btn))
        f.addRow(note("Queue: cases to do, most suspicious first (double-click to review)"))
        f.addRow(self.show_all)
        f.addRow(self.queue)
        f.addRow(side_by_side((self.prev_btn, 1), self.next_btn))
        f.addRow(self.report_btn)
        f.addRow(note("Keys: " + "; ".join(f"{shortcut_of(a)} {what}" for a, what in KEYS.items()),
                      "color: #9aa0a6;"))
        f.addRow(self.message)

    # -- the database and the queue ------------------------------------------------------
    def open_db(self) -> ReviewDB | None:
        """The review database named in the panel, a file or a server (opened once, errors
        shown; a URL with a password in it is refused)."""
        text = self.db_path.text().strip()
        location = text if is_url(text) else str(Path(text).expanduser())
        if self.db is not None and self._location == location:
            return self.db
        self.db = None
        if has_password(location):  # not kept on screen either: the field shows it redacted
            self.db_path.setText(redact(location))
            self.message.setText(f"{redact(location)}: keep the password in ~/.pgpass or PGPASSWORD, "
                                 "not in the database field")
            return None
        try:
            if not is_url(location):
                Path(location).parent.mkdir(parents=True, exist_ok=True)
            self.db, self._location = ReviewDB(location), location
        except (ReviewDBError, OSError) as exc:
            self.message.setText(str(exc))
        return self.db

    def _me(self) -> str:
        return self.reviewer.text().strip()

    def _to_do(self, c: CaseReview) -> bool:
        me = self._me()
        if c.status == "to do":
            return not (c.claimed_by not in (None, me) and not c.stale())
        return c.status == "in review" and (c.claimed_by in (None, me) or c.stale())

    def queue_dataset(self, path: str | Path, sync: bool = False) -> int:
        """Queue every case of a dataset; triage is computed in the background (validator
        findings, and agreement with the batch predictions when the panel names a folder)."""
        from ...datasets import open_dataset
        from ...errors import SpineIOError
        from ...qa.triage import triage_dataset

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
        self.refresh_queue()
        predictions = self.panel.predictions.text().strip() or None

        def done(scores: dict) -> str:
            for key, score in scores.items():
                db.set_triage(key, score)
            self.refresh_queue()
            return f"{len(ds)} {ds.kind} cases in the queue, triaged"

        self.panel.task.start(lambda: triage_dataset(ds, predictions), desc=f"Triaging {len(ds)} cases",
                              done=done, sync=sync)
        return n

    def refresh_queue(self) -> None:
        """List the cases to do (all of them with *Show reviewed cases too*)."""
        self.queue.clear()
        cur = self.current.case_key if self.current is not None else None
        for c in (self.db.queue() if self.db is not None else []):
            if not (self.show_all.isChecked() or self._to_do(c) or c.case_key == cur):
                continue
            held = f", held by {c.claimed_by}" if c.held_by_other(self._me()) else ""
            item = QListWidgetItem(f"{c.case_key} [{c.status}{held}] triage {c.triage:.2f}")
            item.setData(Qt.ItemDataRole.UserRole, c.case_key)
            self.queue.addItem(item)
            if c.case_key == cur:
                self.queue.setCurrentItem(item)

    def step_queue(self, step: int) -> str | None:
        """Open the next (+1) or previous (-1) case still to do, in the queue's stable order
        (triage, then key); reviewed cases and cases held by others are passed over."""
        db = self.open_db()
        order = db.queue() if db is not None else []
        keys = [c.case_key for c in order]
        cur = self.current.case_key if self.current is not None and self.current.case_key in keys else None
        start = keys.index(cur) if cur is not None else (-1 if step > 0 else len(keys))
        k = start + step
        while 0 <= k < len(order) and not self._to_do(order[k]):
            k += step
        if not 0 <= k < len(order):
            self.message.setText("No more cases to do in this direction.")
            return None
        self.select_case(order[k].case_key)
        self.refresh_queue()
        return order[k].case_key

    def next_case(self) -> str | None:
        """The next case to do."""
        return self.step_queue(+1)

    def previous_case(self) -> str | None:
        """The previous case to do."""
        return self.step_queue(-1)

    def select_case(self, key: str) -> None:
        """Open ``key`` for review: claim it, or show who holds it (read-only), or take over
        an abandoned claim after asking."""
        db = self.open_db()
        if db is None:
            return
        try:
            cur = db.get(key)
        except KeyError:
            return
        me, self.read_only = self._me(), False
        try:
            if cur.held_by_other(me) and cur.stale() and me and self.confirm_take_over(cur):
                cur = db.take_over(key, me)
            elif cur.held_by_other(me):
                self.read_only = True
            elif me and cur.status in ("to do", "in review"):
                cur = db.claim(key, me)
        except ReviewConflict:
            self.read_only = True
        self.current = cur
        since = time.strftime("%H:%M", time.localtime(cur.claimed_at)) if cur.claimed_at else ""
        self.holder.setText(f"Held by {cur.claimed_by} since {since}: read-only" if self.read_only else "")
        self.save_btn.setEnabled(not self.read_only)
        self.status.setCurrentText(cur.status)
        self.comment.setText(cur.comment)
        self.message.setText(f"Reviewing {key} (status {cur.status})")
        self.panel.open_source(db.source(key))

    # -- decisions ----------------------------------------------------------------------
    def save_review(self) -> bool:
        """Persist status, comment, level flags and the metrics snapshot for the case."""
        db, key, me = self.open_db(), self.panel.case_key(), self._me()
        if db is None or key is None:
            return False
        if self.read_only:
            self.message.setText(f"Not saved: {self.holder.text()}")
            return False
        if not me:
            self.message.setText("Enter your name as reviewer first.")
            return False
        try:  # one transaction: the decision, the level flags and the snapshot, or nothing
            self.current = db.save_review(
                key, me, self.status.currentText(), self.comment.text(), levels=self.panel.decisions(),
                rows=self.panel.rows or None, png=self.panel.snapshot() if self.panel.rows else None,
                info=self.panel.sources(), triage=self.panel.triage())
        except (ReviewConflict, ReviewDBError) as exc:
            self.message.setText(f"Not saved: {exc}")
            return False
        self.refresh_queue()
        self.message.setText(f"Saved {key}: {self.current.status}")
        return True

    def _decide(self, status: str) -> bool:
        self.status.setCurrentText(status)
        return self.save_review()

    def approve(self) -> bool:
        """Approve the case and save."""
        return self._decide("approved")

    def needs_correction(self) -> bool:
        """Mark the case as needing correction and save."""
        return self._decide("needs correction")

    def flag_under_cursor(self) -> int | None:
        """Toggle the flag of the level under the mouse cursor (in the reference)."""
        return self.panel.flag_at(self.panel.viewer.cursor.position)

    def write_report(self, folder: str | Path | None = None) -> tuple[Path, Path] | None:
        """Write the queue's decisions and metrics as CSV and HTML (default: beside the db)."""
        db = self.open_db()
        if db is None:
            return None
        out = Path(folder) if folder else (db.path.parent if db.path else Path.home() / "napari-spine")
        out.mkdir(parents=True, exist_ok=True)
        results = []
        for c in db.queue():
            rows, png = db.latest_snapshot(c.case_key)
            info = db.latest_metrics(c.case_key) or {}
            results.append(CaseResult(c.case_key, rows, c.status, c.reviewer or "", c.comment,
                                      db.levels(c.case_key), png, reference=info.get("reference", ""),
                                      candidate=info.get("candidate", ""), when=info.get("when"),
                                      findings=tuple(info.get("findings", ()))))
        kinds = sorted({c.dataset for c in db.queue()})
        title = f"napari-spine QA review: {', '.join(kinds) or (db.path.stem if db.path else 'team queue')}"
        csv_path = write_csv(results, out / "qa_report.csv")
        html_path = write_html(results, out / "qa_report.html", title=title)
        self.message.setText(f"Report written: {html_path}")
        return csv_path, html_path
