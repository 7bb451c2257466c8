"""What keeps the correction panel fluid: the box a paint stroke touched, the level check in
a worker, and the per-case settings (transitional levels) kept beside the output."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...io.files import safe_name, write_json

__all__ = ["CaseSettings", "LiveCheck", "stroke_box"]


def stroke_box(atoms: Iterable[Any], shape: Sequence[int]) -> tuple[slice, ...] | None:
    """The bounding box of a napari paint event's history atoms (masked atoms carry a box,
    ``(indices, old, new)`` atoms their indices); None when an atom is of another kind."""
    lo = [None] * len(shape)
    hi = [None] * len(shape)

    def grow(axis: int, a: int, b: int) -> None:
        lo[axis] = a if lo[axis] is None else min(lo[axis], a)
        hi[axis] = b if hi[axis] is None else max(hi[axis], b)

    for atom in atoms:
        key = getattr(atom, "slice_key", None)
        if key is not None and len(key) == len(shape):
            for ax, (s, n) in enumerate(zip(key, shape)):
                a, b, _ = s.indices(n)
                grow(ax, a, b)
        elif isinstance(atom, tuple) and len(atom) == 3 and len(atom[0]) == len(shape):
            for ax, ix in enumerate(atom[0]):
                ix = np.asarray(ix)
                if ix.size:
                    grow(ax, int(ix.min()), int(ix.max()) + 1)
        else:
            return None
    if any(v is None for v in lo):
        return None
    return tuple(slice(a, b) for a, b in zip(lo, hi))


class CaseSettings:
    """Settings remembered with a case (``<output>/.cases/<case>.json``): its transitional levels."""

    def __init__(self, folder: Path, key: str):
        self.path = Path(folder) / ".cases" / f"{safe_name(key)}.json"

    def load(self) -> dict:
        """The saved settings ({} when none or unreadable)."""
        try:
            doc = json.loads(self.path.read_text())
            return doc if isinstance(doc, dict) else {}
        except (OSError, ValueError):
            return {}

    def transitional(self) -> list[str]:
        """The transitional levels switched on for the case."""
        return [t for t in self.load().get("transitional", []) if t in ("T13", "L6")]

    def set_transitional(self, names: Iterable[str]) -> None:
        """Remember the transitional levels (written atomically)."""
        doc = self.load()
        doc["transitional"] = sorted(set(names))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, doc)


class LiveCheck:
    """Runs the level check on the labels in a worker, never on the GUI thread.

    ``prepare()`` runs on the GUI thread and returns the job (a function of arrays only, so
    a running check keeps no panel or viewer alive); ``show(result)`` lists its result.
    Both are held weakly. Each edit bumps :attr:`generation`; a result computed while the
    labels changed is thrown away and the check runs again, so the list always describes
    the labels as they are.
    """

    def __init__(self, prepare: Callable[[], Callable[[], Any]], show: Callable[[Any], None]):
        from .._workers import Task

        self._prepare, self._show = weakref.WeakMethod(prepare), weakref.WeakMethod(show)
        self.task = Task()
        self.generation = 0
        self._again = False

    def stop(self, wait_s: float = 60.0) -> None:
        """No further check (the window is closing); a running one is waited for, so its
        thread never signals into a window that is gone (Qt would abort the process)."""
        self._prepare = lambda: None
        self._again = False
        if not self.task.busy:
            return
        import time

        from qtpy.QtCore import QEventLoop
        from qtpy.QtWidgets import QApplication

        deadline = time.monotonic() + wait_s
        while self.task.busy and time.monotonic() < deadline:
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.005)

    def edited(self) -> None:
        """The labels changed (called on the GUI thread after each step)."""
        self.generation += 1

    def start(self) -> None:
        """Check the labels as they are now (again, once the running check ends)."""
        if self.task.busy:
            self._again = True
            return
        prepare = self._prepare()
        if prepare is None:
            return
        gen, job = self.generation, prepare()
        self.task.start(job, desc="Checking the levels", done=lambda res: self._done(res, gen),
                        failed=lambda exc: str(exc))

    def _done(self, result: Any, gen: int) -> None:
        show = self._show()
        if show is None:
            return None
        if gen == self.generation and not self._again:
            try:
                show(result)
            except RuntimeError:  # the panel was closed while the check ran
                pass
            return None
        self._again = False
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, self.start)  # after the task has finished its bookkeeping
        return None
