"""The correction panel's history side: paint strokes recorded by the box they touched,
landmark moves, undo and redo of labels, landmarks and locks together, and the refresh of
the lock list, buttons and level check after each step (:class:`TrackMixin`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import correction as corr
from ._correction_live import stroke_box

__all__ = ["TrackMixin"]

_NONE = np.empty(0, dtype=np.int64)  # no voxel to compare (a landmark step)


class TrackMixin:
    """Recording and walking the history; mixed into the correction panel."""

    def _on_data(self, event: Any = None) -> None:
        self._after_data.start()  # the dataset panel sets the case's metadata after the data

    def _data_replaced(self) -> None:
        """The layer's array was replaced: a step of this case, or a new case's session."""
        layer = self._layer
        s = self.session(layer) if layer is not None else None  # a new one for another case
        if s is None:
            return
        self._watch_points()
        if not self._blocked(s):
            self._record(lambda: s.commit(layer.data, "labels replaced"))
        self._refresh()

    def _watch_points(self) -> None:
        """Bind the case's landmarks layer, whichever came first and whatever the layer
        order: its points are part of the history (a shift renames them, undo restores)."""
        points = self.ws.landmarks_layer(self.ws.case_of(self._layer)) if self._layer is not None else None
        same = points is not None and self._points is not None and self._key(points) == self._key(self._points)
        if not same and self._points is not None:
            try:
                self._points.events.data.disconnect(self._on_points)
                self._points.events.features.disconnect(self._on_points)
            except (TypeError, ValueError, RuntimeError):
                pass
        if points is not None and not same:
            points.events.data.connect(self._on_points)
            points.events.features.connect(self._on_points)
        self._points = points
        self.landmarks_box.show_layer(points)
        s = self.sessions.get(self._key(self._layer)) if self._layer is not None else None
        if points is not None and s is not None and s.landmarks is None:
            try:
                s.attach_landmarks(self.ws.landmarks_of(points))
            except (KeyError, ValueError, TypeError):
                pass

    def _refresh(self) -> None:
        """Bring the banner, the lock list, the history buttons and the check up to date."""
        s = self.session()
        self.banner.show_session(s)
        self.lock_box.fill(s.present() if s is not None else [], s.locked if s is not None else ())
        self.history_box.show_state(s)
        self.landmarks_box.show_layer(self._points)
        self.check_box.live.edited()
        self._recheck.start()

    def _clear_messages(self) -> None:
        """A new action: what earlier steps said is no longer shown."""
        for label in (self.paint_box.message, self.levels_box.message, self.history_box.message,
                      self.landmarks_box.message, self.banner.message, self.status):
            label.setText("")

    def undo(self) -> corr.history.Step | None:
        """Undo the last step: labels, landmarks and locks."""
        return self._move("undo")

    def redo(self) -> corr.history.Step | None:
        """Redo the last undone step."""
        return self._move("redo")

    def _move(self, kind: str):
        layer = self.labels_layer()
        s = self.session(layer)
        if s is None:
            return None
        self._commit_paint()  # a stroke not yet recorded is the last step
        self._clear_messages()
        step = self._record(lambda: s.undo(layer.data) if kind == "undo" else s.redo(layer.data))
        if step is None:
            self.history_box.message.setText(f"Nothing to {kind}.")
            return None
        layer.refresh()
        if step.landmarks_after is not None:
            self._show_landmarks(s.landmarks)
        self.history_box.message.setText(f"{'Undone' if kind == 'undo' else 'Redone'}: {step.describe()}")
        self._refresh()
        return step

    def _record(self, fn):
        """Run a session change; what the session refuses (edits pending or open elsewhere)
        and a journal that cannot be written are said, never raised into Qt."""
        try:
            return fn()
        except (corr.PendingEditsError, corr.ReadOnlySessionError) as exc:
            self.banner.say(str(exc).split(": ", 1)[-1])
            self._show_session_state(self.session())
            return None
        except corr.JournalError as exc:
            self.status.setText(str(exc))
            self.banner.show_session(self.session())
            return None

    def _show_landmarks(self, lm) -> None:
        points = self._points
        if points is None and lm is not None and len(lm):  # restored landmarks of a case shown without
            self.new_landmarks(lm)
            return
        if points is None or lm is None:
            return
        self._syncing = True
        try:
            self.ws.set_landmarks(points, lm)
        finally:
            self._syncing = False

    def _on_points(self, event: Any = None) -> None:
        action = str(getattr(event, "action", "changed"))
        if self._syncing or action not in ("added", "removed", "changed"):
            return
        s = self.session()
        if s is not None and self._blocked(s):  # the move is put back, as a refused stroke is
            self._show_landmarks(s.landmarks)
            self.banner.say(f"Landmark change refused: {self._blocked(s)}")
            return
        try:
            lm = self.ws.landmarks_of(self._points)
        except (KeyError, ValueError, TypeError):
            return
        if s is not None and self._record(lambda: s.commit(self._layer.data, f"landmark {action}", where=_NONE,
                                                           landmarks=lm)):
            self._refresh()

    def _on_paint(self, event: Any = None) -> None:
        layer = self._layer
        self._boxes.append(stroke_box(getattr(event, "value", None) or [], layer.data.shape)
                           if layer is not None else None)
        self._after_paint.start()

    def _commit_paint(self) -> None:
        """Record the strokes since the last step: only the boxes they touched are compared."""
        boxes, self._boxes = self._boxes, []
        layer = self._layer
        s = self.session(layer) if layer is not None else None
        if s is None or not boxes:
            return
        self._clear_messages()
        box = _union(boxes)
        data = np.asarray(layer.data)
        why = self._blocked(s)
        if why:  # the stroke is put back: nothing may change this case yet
            where = box if box is not None else (slice(None),) * data.ndim
            data[where] = s.recorded[where]
            layer.refresh()
            self.banner.say(f"Painting refused: {why}")
            self._show_session_state(s, layer)
            return
        kept = s.enforce_locks(data, box)  # painting may not change a locked structure
        if kept:
            layer.refresh()
            self.paint_box.message.setText(f"{kept} voxels of locked structures kept")
        if self._record(lambda: s.commit(data, "paint", where=box)) is not None:
            self._refresh()


def _union(boxes: list) -> tuple[slice, ...] | None:
    if any(b is None for b in boxes):
        return None
    return tuple(slice(min(b[k].start for b in boxes), max(b[k].stop for b in boxes)) for k in range(len(boxes[0])))
