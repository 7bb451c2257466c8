"""Unsaved edits are never left behind silently: before the case on show makes way for
another (the dataset panel, QA's next case) and before napari closes, the annotator is
asked *Save* / *Keep in journal* / *Discard* (or Cancel). Nothing is lost by any answer but
Discard: *Keep in journal* leaves the edits in the crash-safe journal, offered again the
next time the case is opened. Saving over an existing file asks first.

The two questions are module functions (:func:`ask_unsaved`, :func:`confirm_overwrite`),
so scripts and tests can answer them without a dialog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ANSWERS", "GuardMixin", "ask_unsaved", "confirm_overwrite"]

ANSWERS = ("save", "keep", "discard", "cancel")


def ask_unsaved(parent: Any, case: str, n: int) -> str:
    """Ask what becomes of ``n`` unsaved edits of ``case``: one of :data:`ANSWERS`."""
    from qtpy.QtWidgets import QMessageBox

    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved edits")
    box.setText(f"{case} has {n} unsaved edit{'s' if n != 1 else ''}.")
    box.setInformativeText("Save the labels now, keep the edits in the journal (offered again the next "
                           "time the case is opened), or discard them for good?")
    save = box.addButton("Save", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("Keep in journal", QMessageBox.ButtonRole.ActionRole)
    discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    clicked = box.clickedButton()
    return {id(save): "save", id(keep): "keep", id(discard): "discard"}.get(id(clicked), "cancel")


def confirm_overwrite(parent: Any, path: Path) -> bool:
    """Whether an existing file may be replaced."""
    from qtpy.QtWidgets import QMessageBox

    answer = QMessageBox.question(parent, "Replace file?", f"{path} exists. Replace it?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class GuardMixin:
    """Asking before unsaved edits are left; mixed into the correction panel."""

    _close_filter = None  # set once the panel is in napari's window

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Once the panel is in napari's window, watch that window's close."""
        if self._close_filter is None:
            top = self
            while top.parentWidget() is not None:
                top = top.parentWidget()
            if top is not self:
                from .._closing import CloseFilter

                self._close_filter = CloseFilter(self, self.confirm_close)
                top.installEventFilter(self._close_filter)
        super().showEvent(event)

    def confirm_leave(self, key: str) -> bool:
        """Ask about the unsaved edits of the session of layer ``key`` before its case goes:
        True when it may go (saved, kept in the journal, or discarded)."""
        s = self.sessions.get(key)
        if s is None or not s.unsaved or s.pending or s.read_only is not None:
            return True
        case = self._cases.get(key)
        name = getattr(case, "case_id", None) or "This case"
        answer = ask_unsaved(self, name, s.unsaved)
        if answer == "cancel":
            return False
        if answer == "save":
            layer = next((ly for ly in self.ws.layers_of("labels") if self._key(ly) == key), None)
            if layer is None or self.save_box.save_labels(layer=layer) is None:
                return False  # not saved: the reason is in the status line, the case stays
        elif answer == "discard":
            s.discard_unsaved()
            self.status.setText(f"The unsaved edits of {name} were discarded.")
        s.close()  # "keep": the journal stays, offered again next time
        self.sessions.pop(key, None)
        return True

    def confirm_close(self) -> bool:
        """napari is closing: ask about each case with unsaved edits; True lets it close."""
        self._commit_paint()
        for key in list(self.sessions):
            if not self.confirm_leave(key):
                return False
        for s in self.sessions.values():
            s.close()
        self.sessions.clear()
        self.check_box.live.stop()
        return True
