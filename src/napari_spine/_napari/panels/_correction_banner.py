"""The top of the correction panel: what stands between the annotator and editing.

Always in view (above the scrolling part): an earlier session's unsaved edits with the
choice *Restore* / *Discard*, a case open in another session (read-only), or a journal
that stopped after a failed write. The panel's tools stay off while a choice is due.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import QFrame, QLabel, QPushButton, QVBoxLayout

from ._common import side_by_side

__all__ = ["SessionBanner", "banner_text"]

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
