"""The "Spine correction" dock widget: level-aware edits, locks, validator, journal, export.

Every operation is a pure function of :mod:`napari_spine.correction`; the panel applies its
result to the labels layer through ``Labels.data_setitem`` (so napari's undo restores it),
and the layer's :class:`~napari_spine.correction.CorrectionSession` journals it, keeps
locked structures as they are and knows the loaded baseline. Ctrl+Alt+Down / Ctrl+Alt+Up
step the painted structure to the next / previous level (napari key bindings).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QGroupBox,
    QWidget,
)

from ... import correction as corr
from ...anatomy import ontology
from .._workspace import Workspace
from ._common import note, scrolling
from ._correction_boxes import CheckBox, LevelsBox, LocksBox, PaintBox
from ._correction_save import SaveBox

if TYPE_CHECKING:
    import napari

_ALL_NAMES = [ontology.name_of(i) for i in ontology.sort_cranio_caudal(s.id for s in ontology.STRUCTURES)]


class CorrectionWidget(QWidget):
    """Correct a spine labels layer level by level, safely."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.ws = Workspace(napari_viewer)
        self.output = Path.home() / "napari-spine"
        self.sessions: dict[str, corr.CorrectionSession] = {}
        self._layer = None
        self.status = note()
        layout = scrolling(self)
        self.save_box = sb = SaveBox(self)
        self.save_labels, self.save_landmarks = sb.save_labels, sb.save_landmarks
        self.add_to_training, self.export_training = sb.add_to_training, sb.export_training
        self.restore_pending, self.decline_restore = sb.restore_pending, sb.decline_restore
        self.restore_btn, self.scheme = sb.restore_btn, sb.scheme
        for g in (self._paint_group(), self._levels_group(), self._locks_group(),
                  self._check_group(), self.save_box):
            layout.addWidget(g)
        layout.addStretch(1)
        for key, step in (("Control-Alt-Down", +1), ("Control-Alt-Up", -1)):
            self.viewer.bind_key(key, lambda _v, s=step: self.step_level(s), overwrite=True)
        # right after a stroke ends (napari emits paint once per stroke)
        self._after_paint = _timer(self, 0, self._commit_paint)
        # the level check and lock list (whole-volume passes) wait for a pause in painting
        self._recheck = _timer(self, 600, self._after_edits)
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self.viewer.layers.events.inserted.connect(self._on_active)
        self.viewer.mouse_move_callbacks.append(self._on_mouse_move)
        self._on_active()

    # -- building ----------------------------------------------------------------------
    def _paint_group(self) -> QGroupBox:
        box = PaintBox(_ALL_NAMES, self.pick)
        self.search, self.painting, self.under = box.search, box.painting, box.under
        return box

    def _levels_group(self) -> QGroupBox:
        box = LevelsBox(self._actions(), _ALL_NAMES)
        for name in ("from_level", "struct_a", "struct_b", "min_volume", "slice_a", "slice_b", "buttons"):
            setattr(self, name, getattr(box, name))
        self.shift_up, self.shift_down = self.buttons["Shift levels up"], self.buttons["Shift levels down"]
        return box

    def _actions(self) -> list[tuple[str, str, Any]]:
        a, b = self._id_a, self._id_b
        return [
            ("Shift levels up", "Every level one step cranial (L4 -> L3), discs and landmarks with it",
             lambda: self.shift(-1)),
            ("Shift levels down", "Every level one step caudal (L3 -> L4), discs and landmarks with it",
             lambda: self.shift(+1)),
            ("Relabel A as B", "", lambda: self._op("relabel", corr.relabel, a(), b())),
            ("Swap A and B", "", lambda: self._op("swap", corr.swap_levels, a(), b())),
            ("Merge A into B", "", lambda: self._op("merge", corr.merge, a(), b())),
            ("Split A at plane into B", "Split along the line of the 'split plane' points",
             self.split_at_plane),
            ("Revert A to loaded", "", self.revert_structure),
            ("Remove islands", "", lambda: self._op("remove islands", corr.remove_islands,
                                                    self.min_volume.value(), self._spacing())),
            ("Keep largest piece", "", lambda: self._op("keep largest", corr.keep_largest)),
            ("Fill holes", "", lambda: self._op("fill holes", corr.fill_holes)),
            ("Interpolate A between slices", "", lambda: self._op(
                "interpolate", corr.interpolate_between_slices, a(), self.slice_a.value(),
                self.slice_b.value(), 0)),
        ]

    def _locks_group(self) -> QGroupBox:
        self.lock_box = LocksBox(self.session)
        self.locks = self.lock_box.list
        return self.lock_box

    def _check_group(self) -> QGroupBox:
        self.check_box = CheckBox(self.ws)
        self.problems = self.check_box.list
        return self.check_box

    # -- layer and session ------------------------------------------------------------
    def labels_layer(self):
        """The labels layer being corrected: the selected one, else the newest."""
        return self.ws.labels_layer()

    @staticmethod
    def _key(layer) -> str:
        # napari hands plugins proxies of its layers (a new object per access): key by the
        # layer's own id, never by the Python object
        return str(getattr(layer, "unique_id", None) or layer.name)

    def session(self, layer=None) -> corr.CorrectionSession | None:
        """The correction session of a labels layer (made, with its journal, on first use)."""
        layer = layer or self.labels_layer()
        if layer is None:
            return None
        key = self._key(layer)
        if key not in self.sessions:
            case = self.ws.case_of(layer)
            source = (case.source.label_path or case.source.path or case.metadata.get("labels_path")
                      or case.metadata.get("image_path") or None) if case is not None else None
            journal = corr.EditJournal(self.output / ".journal", case.key if case else layer.name,
                                       layer.data.shape, source=source)
            self.sessions[key] = corr.CorrectionSession(np.asarray(layer.data), journal)
            s = self.sessions[key]
            self.save_box.offer_restore(len(journal.entries()) if s.pending else 0)
        return self.sessions[key]

    def set_output(self, folder: str | Path) -> None:
        """Save into (and journal edits in) another folder, from the layer as it is now."""
        locked = self.locked_ids()
        self.output = Path(folder).expanduser()
        self.save_box.out_edit.setText(str(self.output))
        self.sessions.clear()
        s = self.session()
        if s is not None:
            s.locked = set(locked)  # the locks stay with the layer

    def _on_active(self, *_: Any) -> None:
        layer = self.labels_layer()
        if layer is self._layer or (layer is not None and self._layer is not None
                                    and self._key(layer) == self._key(self._layer)):
            return
        if self._layer is not None:
            try:
                self._layer.events.paint.disconnect(self._schedule_commit)
                self._layer.events.selected_label.disconnect(self._show_painting)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._layer = layer
        if layer is None:
            return
        layer.events.paint.connect(self._schedule_commit)
        layer.events.selected_label.connect(self._show_painting)
        self.session(layer)
        self._fill_locks()
        self._show_painting()
        self.validate()

    # -- picking ------------------------------------------------------------------------
    def pick(self, name: str) -> int | None:
        """Select the structure to paint by anatomical name."""
        try:
            sid = ontology.by_name(name).id
        except KeyError:
            self.status.setText(f"No structure called {name!r}")
            return None
        layer = self.labels_layer()
        if layer is not None:
            layer.selected_label = sid
            layer.mode = "paint"
        self._show_painting()
        return sid

    def step_level(self, step: int) -> None:
        """Move the painted structure to the next (+1) / previous (-1) level, discs included."""
        layer = self.labels_layer()
        if layer is None:
            return
        order = list(ontology.cranio_caudal_order())
        cur = int(layer.selected_label)
        k = order.index(cur) + step if cur in order else 0
        layer.selected_label = order[min(max(k, 0), len(order) - 1)]
        self._show_painting()

    def _show_painting(self, *_: Any) -> None:
        layer = self.labels_layer()
        if layer is not None:
            sid = int(layer.selected_label)
            self.painting.setText(f"Painting: {ontology.name_of(sid)} ({sid})")

    def _on_mouse_move(self, viewer, event) -> None:
        layer = self.labels_layer()
        value = layer.get_value(viewer.cursor.position, world=True) if layer is not None else None
        if value is not None and not isinstance(value, tuple):
            self.under.setText(f"Under cursor: {ontology.name_of(int(value)) if value else 'background'}")

    # -- locks --------------------------------------------------------------------------
    def _fill_locks(self) -> None:
        self.lock_box.fill(self.labels_layer())

    def locked_ids(self) -> list[int]:
        """The structures no edit may change."""
        s = self.session()
        return sorted(s.locked) if s is not None else []

    def lock(self, name: str, on: bool = True) -> None:
        """Lock (or unlock) a structure by name."""
        self.lock_box.lock(name, on)

    # -- operations ---------------------------------------------------------------------
    def _id_a(self) -> int:
        return ontology.by_name(self.struct_a.currentText()).id

    def _id_b(self) -> int:
        text = self.struct_b.currentText().strip()
        return 0 if text in ("0", "background") else ontology.by_name(text).id

    def _spacing(self) -> tuple[float, ...]:
        layer = self.labels_layer()
        return tuple(float(s) for s in layer.scale[-3:]) if layer is not None else (1.0, 1.0, 1.0)

    def _op(self, name: str, fn, *args, **kwargs) -> int:
        layer = self.labels_layer()
        if layer is None:
            self.status.setText("No labels layer.")
            return 0
        try:
            new = fn(np.asarray(layer.data), *args, locked=self.locked_ids(), **kwargs)
        except (ValueError, KeyError) as exc:
            self.status.setText(f"{name}: {exc}")
            return 0
        return self.apply(new, name)

    def apply(self, new: np.ndarray, name: str) -> int:
        """Write an operation's result to the layer (undoable), journal it, re-validate."""
        layer = self.labels_layer()
        old = np.asarray(layer.data)
        changed = np.nonzero(new != old)
        n = int(changed[0].size)
        if n:
            layer.data_setitem(changed, new[changed])
            self.session(layer).commit(layer.data, name)
            self._fill_locks()
        self.status.setText(f"{name}: {n} voxels changed" if n else f"{name}: nothing to change")
        self.validate()
        return n

    def shift(self, offset: int) -> int:
        """Shift every level (or those from the chosen one) by ``offset``; landmarks follow."""
        start = None if self.from_level.currentIndex() == 0 else self.from_level.currentText()
        layer = self.labels_layer()
        if layer is None:
            return 0
        points = self.ws.landmarks_layer(self.ws.case_of(layer))
        lm = self.ws.landmarks_of(points) if points is not None else None
        try:
            out = corr.shift_levels(np.asarray(layer.data), offset, start, landmarks=lm,
                                    locked=self.locked_ids())
        except ValueError as exc:
            self.status.setText(f"Shift: {exc}")
            return 0
        new, lm2 = out if lm is not None else (out, None)
        n = self.apply(new, f"shift levels {offset:+d}" + (f" from {start}" if start else ""))
        if lm2 is not None and n:
            self.ws.show_landmarks(points, lm2)
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
            self.status.setText("Place one or two points on the split line in the sagittal view "
                                "(layer 'split plane'), then split again.")
            return 0
        pts = np.asarray([layer.world_to_data(plane.data_to_world(p)) for p in plane.data])[:, -3:]
        try:
            point, normal = corr.plane_from_points(pts)
        except ValueError as exc:
            self.status.setText(f"split: {exc}")
            return 0
        return self._op("split", corr.split_by_plane, self._id_a(), point, normal, self._id_b(),
                        self._spacing())

    def revert_structure(self) -> int:
        """Bring structure A back to its loaded extent (locked structures stay)."""
        layer = self.labels_layer()
        s = self.session(layer)
        if s is None:
            return 0
        return self.apply(s.revert(layer.data, self._id_a()), f"revert {self.struct_a.currentText()}")

    # -- painting -----------------------------------------------------------------------
    def _schedule_commit(self, event: Any = None) -> None:
        self._after_paint.start()

    def _commit_paint(self) -> None:
        layer = self.labels_layer()
        s = self.session(layer)
        if layer is None or s is None:
            return
        kept = s.enforce_locks(np.asarray(layer.data))  # painting may not change a locked structure
        if kept:
            layer.refresh()
            self.status.setText(f"{kept} voxels of locked structures kept")
        if s.commit(layer.data, "paint"):  # journaled at once; checks once painting pauses
            self._recheck.start()

    def _after_edits(self) -> None:
        self._fill_locks()
        self.validate()

    # -- validator ----------------------------------------------------------------------
    def validate(self) -> list[corr.Finding]:
        """Re-run the level-sequence check and list its findings."""
        return self.check_box.check(self.labels_layer(), self._spacing())

    @property
    def findings(self) -> list[corr.Finding]:
        """The level-sequence check's findings for the layer as it is now."""
        return self.check_box.findings

    def jump_to(self, row: int) -> tuple[float, ...] | None:
        """Move the view to a validator finding (its sagittal slice and centre)."""
        return self.check_box.jump_to(row, self.labels_layer())


def _timer(parent, interval_ms: int, slot) -> QTimer:
    t = QTimer(parent)
    t.setSingleShot(True)
    t.setInterval(interval_ms)
    t.timeout.connect(slot)
    return t
