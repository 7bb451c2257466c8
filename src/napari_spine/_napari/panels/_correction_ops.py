"""The correction panel's operations: each reads its arguments from the controls, runs the
pure function of :mod:`napari_spine.correction` with the locks, and writes the result to
the layer as one step of the history (:class:`OpsMixin`). Errors are said under the
buttons, never raised into Qt."""

from __future__ import annotations

import numpy as np

from ... import correction as corr
from ...anatomy import ontology
from ...correction.history import changed_voxels, put_flat, take_flat

__all__ = ["OpsMixin"]


def _structure(text: str, role: str) -> int:
    try:
        return ontology.by_name(text.strip()).id
    except KeyError:
        raise ValueError(f"{role}: no structure called {text.strip()!r}") from None


class OpsMixin:
    """Level operations; mixed into the correction panel."""

    def _id_a(self) -> int:
        return _structure(self.struct_a.currentText(), "A")

    def _id_b(self) -> int:
        text = self.struct_b.currentText().strip()
        return 0 if text in ("0", "background") else _structure(text, "B")

    def _spacing(self) -> tuple[float, ...]:
        layer = self.labels_layer()
        return tuple(float(s) for s in layer.scale[-3:]) if layer is not None else (1.0, 1.0, 1.0)

    def _op(self, name: str, fn, *args) -> int:
        """Run an operation; its arguments are read from the controls now (callables)."""
        layer = self.labels_layer()
        self._clear_messages()
        if layer is None:
            self.levels_box.message.setText("No labels layer.")
            return 0
        if why := self._blocked(self.session(layer)):  # nothing may change this case yet
            self.levels_box.message.setText(f"{name}: {why}")
            return 0
        try:
            values = [a() if callable(a) else a for a in args]
            new = fn(np.asarray(layer.data), *values, locked=self.locked_ids())
        except (ValueError, KeyError) as exc:
            self.levels_box.message.setText(f"{name}: {exc.args[0] if exc.args else exc}")
            return 0
        return self.apply(new, name)

    def apply(self, new: np.ndarray, name: str, landmarks=None) -> int:
        """Write an operation's result to the layer as one step of the history (refused,
        with the reason, while the case may not be edited here)."""
        layer = self.labels_layer()
        if why := self._blocked(self.session(layer)):
            self.levels_box.message.setText(f"{name}: {why}")
            return 0
        data = np.asarray(layer.data)
        changed = changed_voxels(data, new)
        if changed.size:
            put_flat(data, changed, take_flat(new, changed))
            layer.refresh()
        step = self._record(lambda: self.session(layer).commit(data, name, where=changed, landmarks=landmarks))
        if step is not None and step.landmarks_after is not None:
            self._show_landmarks(step.landmarks_after)
        n = int(changed.size)
        self.levels_box.message.setText(f"{name}: {n} voxels changed" if n else f"{name}: nothing to change")
        self._refresh()
        return n

    def shift(self, offset: int) -> int:
        """Shift the levels from From to To by ``offset``; landmarks follow; anchors stay."""
        layer = self.labels_layer()
        s = self.session(layer)
        if layer is None or s is None:
            return 0
        self._clear_messages()
        if why := self._blocked(s):
            self.levels_box.message.setText(f"Shift: {why}")
            return 0
        start, end = self.levels_box.shift_range()
        data = np.asarray(layer.data)
        try:  # renumbered in place: the history keeps only the changed voxels
            out = corr.shift_levels(data, offset, start, end, landmarks=s.landmarks, in_place=True,
                                    transitional=self.levels_box.transitional(), locked=self.locked_ids())
        except ValueError as exc:
            self.levels_box.message.setText(f"Shift: {exc}")
            return 0
        changes, lm2 = out if s.landmarks is not None else (out, None)
        span = f" from {start or 'the top'}" + (f" to {end}" if end else "") if start or end else ""
        name = f"shift levels {offset:+d}{span}"
        layer.refresh()
        step = self._record(lambda: s.commit(data, name, where=changes.index, landmarks=lm2))
        if step is not None and step.landmarks_after is not None:
            self._show_landmarks(step.landmarks_after)
        n = int(changes.index.size)
        self.levels_box.message.setText(f"{name}: {n} voxels changed")
        self._refresh()
        return n

    def split_at_plane(self) -> int:
        """Split structure A along the plane given by a 'split plane' points layer (1-2 points)."""
        layer = self.labels_layer()
        plane = self.ws.layer_named("split plane", "points")
        if layer is None or plane is None or len(plane.data) == 0:
            if layer is not None and plane is None:
                self.viewer.add_points(np.empty((0, 3)), name="split plane", scale=layer.scale,
                                       translate=layer.translate, face_color="red", size=4)
                self.viewer.layers.selection.active = layer
            self.levels_box.message.setText("Place one or two points on the split line in the sagittal view "
                                            "(layer 'split plane'), then split again.")
            return 0
        pts = np.asarray([layer.world_to_data(plane.data_to_world(p)) for p in plane.data])[:, -3:]
        try:
            point, normal = corr.plane_from_points(pts)
        except ValueError as exc:
            self.levels_box.message.setText(f"split: {exc}")
            return 0
        return self._op("split (the part below the line became B)", corr.split_by_plane, self._id_a, point,
                        normal, self._id_b, self._spacing)

    def revert_structure(self) -> int:
        """Bring structure A back to its loaded extent (locked structures stay)."""
        layer = self.labels_layer()
        s = self.session(layer)
        if s is None:
            return 0
        return self._op(f"revert {self.struct_a.currentText()}", lambda lab, sid, locked: s.revert(lab, sid),
                        self._id_a)
