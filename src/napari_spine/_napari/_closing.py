"""Seeing a window's close before the window does (one event filter for the plugin's needs)."""

from __future__ import annotations

import weakref
from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject

__all__ = ["CloseFilter"]


class CloseFilter(QObject):
    """Calls ``allow()`` when the watched widget is asked to close; a False answer keeps it
    open. ``allow`` is held weakly when it is a bound method, so the filter keeps nothing alive."""

    def __init__(self, parent: QObject, allow: Callable[[], bool]):
        super().__init__(parent)
        self._allow = weakref.WeakMethod(allow) if hasattr(allow, "__self__") else (lambda: allow)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        """Qt's hook: True (the event is taken, the close ignored) when ``allow()`` says no."""
        if event.type() == QEvent.Type.Close:
            allow = self._allow()
            if allow is not None and not allow():
                event.ignore()
                return True
        return False
