"""The top of the correction panel: what stands between the annotator and editing.

Always in view (above the scrolling part): an earlier session's unsaved edits with the
choice *Restore* / *Discard*, a case open in another session (read-only), or a journal
that stopped after a failed write. The panel's tools stay off while a choice is due.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtWidgets import QFrame, QLabel, QPushButton, QVBoxLayout

from ... import correction as corr
from ...correction.history import changed_voxels
from ._common import side_by_side

__all__ = ["SessionBanner", "SessionStateMixin", "banner_text"]

_PENDING_STYLE = "QFrame#banner { background-color: #5c3d00; border: 1px solid #ffae42; border-radius: 3px; }"
_READONLY_STYLE = "QFrame#banner { background-color: #3d3d5c; border: 1px solid #9aa0ff; border-radius: 3px; }"


def banner_text(session: Any) -> tuple[str, str]:
    """``(kind, words)`` for a session: kind is ``"pending"``, ``"read-only"``, ``"gap"`` or ``""``."""
    if session is None:
        return "", ""
    if session.read_only is not None:
        return "read-only", session.read_only.split(": ", 1)[-1].capitalize() + \
            ". Close it there to edit here, then press Try again."
    if session.pending:
        return "pending", (f"Unsaved edits of an earlier session on this case: {session.pending_summary()}. "
                           "Editing is off until you choose.")
    if session.journal_gap is not None:
        return "gap", (f"The edit journal stopped ({session.journal_gap}): the next edit writes the whole "
                       "state again; save the labels if it keeps failing.")
    return "", ""


class SessionBanner(QFrame):
    """Restore / Discard (pending edits), Try again (read-only), or a journal warning."""

    def __init__(self, restore: Callable[[], Any], discard: Callable[[], Any], retry: Callable[[], Any]):
        super().__init__()
        self.setObjectName("banner")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setStyleSheet("font-weight: bold; color: #ffffff;")
        self.restore_btn = QPushButton("Restore")
        self.restore_btn.setToolTip("Bring back the earlier session's labels, landmarks and locks "
                                    "(its history can be undone)")
        self.discard_btn = QPushButton("Discard")
        self.discard_btn.setToolTip("Delete the earlier session's edits for good")
        self.retry_btn = QPushButton("Try again")
        self.retry_btn.setToolTip("Open the case for editing again (after the other session closed it)")
        self.restore_btn.clicked.connect(lambda: restore())
        self.discard_btn.clicked.connect(lambda: discard())
        self.retry_btn.clicked.connect(lambda: retry())
        self.message = QLabel()  # what a refused stroke or a restore said
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #ffd27f;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addWidget(self.text)
        lay.addWidget(side_by_side((self.restore_btn, 1), (self.discard_btn, 1), (self.retry_btn, 1)))
        lay.addWidget(self.message)
        self.kind = ""
        self.setVisible(False)

    def show_session(self, session: Any) -> str:
        """Show what the session needs from the user (hidden when nothing); returns the kind."""
        kind, words = banner_text(session)
        if kind != self.kind:
            self.message.setText("")
        self.kind = kind
        self.text.setText(words)
        self.setStyleSheet(_READONLY_STYLE if kind == "read-only" else _PENDING_STYLE)
        n = words.split(": ", 1)[-1].split(" ", 1)[0] if kind == "pending" else ""
        self.restore_btn.setText(f"Restore {n} edit{'s' if n != '1' else ''}" if n.isdigit() else "Restore")
        self.restore_btn.setVisible(kind == "pending")
        self.discard_btn.setVisible(kind == "pending")
        self.retry_btn.setVisible(kind == "read-only")
        self.setVisible(bool(kind))
        return kind

    def say(self, text: str) -> None:
        """A line under the choice (a refused stroke, what a restore did)."""
        self.message.setText(text)


class SessionStateMixin:
    """Restore, discard, try again, and the tools on or off by the session's state; mixed
    into the correction panel."""

    def _blocked(self, s: corr.CorrectionSession | None) -> str:
        """Why edits on the session's case are off ("" when they are on)."""
        if s is None:
            return ""
        if s.read_only is not None:
            return s.read_only
        return "Restore or discard the earlier session's edits first." if s.pending else ""

    def _show_session_state(self, s: corr.CorrectionSession | None, layer=None) -> None:
        """The banner, and the tools on or off by whether the case may be edited here."""
        self.banner.show_session(s)
        blocked = bool(self._blocked(s))
        for box in (self.paint_box, self.history_box, self.levels_box, self.lock_box):
            box.setEnabled(not blocked)
        self.save_box.export_btn.setEnabled(not (s is not None and s.pending))
        layer = layer if layer is not None else self.labels_layer()
        if layer is not None and s is not None and not getattr(layer, "multiscale", False):
            layer.editable = not blocked  # napari's own paint tools are off too

    def restore_pending(self) -> int:
        """Bring back the history recorded for this case in an earlier (crashed) session:
        labels, landmarks and locks as they were at its last completed step. Returns the
        number of voxels that changed."""
        layer = self.labels_layer()
        s = self.session(layer)
        if s is None or s.journal is None or not s.pending:
            return 0
        try:
            state = s.restore()  # already in the journal: nothing new is recorded
        except Exception as exc:  # noqa: BLE001 - shown, never raised into Qt
            self.banner.say(f"Not restored: {exc}")
            return 0
        data = np.asarray(layer.data)
        changed = changed_voxels(data, state.labels)
        data[...] = state.labels
        layer.refresh()
        self._show_landmarks(state.landmarks)
        self._show_session_state(s, layer)
        steps = len(s.history.undo_stack)
        self.status.setText(f"Restored {steps} step(s), {changed.size} voxels"
                            + "".join(f"; {d}" for d in s.dropped))
        self._refresh()
        return int(changed.size)

    def decline_restore(self) -> None:
        """Throw away the edits of an earlier session (they never come back)."""
        layer = self.labels_layer()
        s = self.session(layer)
        if s is not None and s.pending:
            s.decline()
            self.status.setText("The earlier session's edits were discarded.")
        self._show_session_state(s, layer)
        self._refresh()

    def retry_session(self) -> corr.CorrectionSession | None:
        """Open the case for editing again (after another session released it)."""
        layer = self.labels_layer()
        if layer is None:
            return None
        key = self._key(layer)
        old = self.sessions.pop(key, None)
        if old is not None:
            old.close()
        s = self.session(layer)
        if s is not None and s.read_only is not None:
            self.banner.say("Still open in the other session.")
        self._refresh()
        return s

