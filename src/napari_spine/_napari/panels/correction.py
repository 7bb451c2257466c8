"""The "Spine correction" dock widget: level-aware edits, one history, locks, check, export.

Every operation is a pure function of :mod:`napari_spine.correction`. The layer's
:class:`~napari_spine.correction.CorrectionSession` keeps one history of labels, landmarks
and locks: an operation, a paint stroke, a landmark moved or a lock ticked is one step,
journalled at once, and Undo / Redo (Ctrl+Z / Ctrl+Shift+Z on the labels layer) restore all
three. After a stroke only the box it touched is compared; the level check runs in a
worker. The next / previous level keys are napari actions (:mod:`.._keys`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QWidget

from ... import correction as corr
from ... import userdirs
from ...anatomy import ontology
from .._keys import attach, shortcut_of
from .._workspace import Workspace, guard_layer
from ._common import note, scrolling
from ._correction_banner import SessionBanner, SessionStateMixin
from ._correction_boxes import CheckBox, HistoryBox, LevelsBox, LocksBox, PaintBox
from ._correction_guard import GuardMixin
from ._correction_live import CaseSettings
from ._correction_ops import OpsMixin
from ._correction_save import SaveBox
from ._correction_track import TrackMixin
from ._landmarks_box import LandmarksBox, LandmarksMixin
from .planes import planes_button

if TYPE_CHECKING:
    import napari

_ALL_NAMES = [ontology.name_of(i) for i in ontology.sort_cranio_caudal(s.id for s in ontology.STRUCTURES)]


class CorrectionWidget(GuardMixin, SessionStateMixin, LandmarksMixin, TrackMixin, OpsMixin, QWidget):
    """Correct a spine labels layer level by level, safely."""

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        attach(self, "correction")  # the shortcuts act on this panel (and its tooltips name them)
        self.ws = Workspace(napari_viewer)
        self.output = Path(userdirs.load_settings().get("output") or Path.home() / "napari-spine")
        self.sessions: dict[str, corr.CorrectionSession] = {}
        self._idents: dict[str, str] = {}  # layer -> the case its session is for
        self._cases: dict[str, Any] = {}  # layer -> the case object its session is for
        self._layer = self._points = None
        self._boxes: list = []  # boxes the strokes since the last step touched (None: unknown)
        self._syncing = False  # the panel itself is updating the landmarks layer
        self.status = note()
        layout = scrolling(self)
        # the choice an earlier session's edits need: above the scrolling part, always in view
        self.banner = SessionBanner(self.restore_pending, self.decline_restore, self.retry_session)
        self.layout().insertWidget(0, self.banner)
        self.restore_btn, self.discard_btn = self.banner.restore_btn, self.banner.discard_btn
        self.save_box = sb = SaveBox(self)
        self.save_labels, self.save_landmarks = sb.save_labels, sb.save_landmarks
        self.add_to_training, self.export_training = sb.add_to_training, sb.export_training
        self.scheme = sb.scheme
        self.history_box = HistoryBox(self.undo, self.redo)
        self.landmarks_box = LandmarksBox(self.new_landmarks, self.load_landmarks)
        for g in (self._paint_group(), self.history_box, self._levels_group(), self._locks_group(),
                  self.landmarks_box, self._check_group(), self.save_box):
            layout.addWidget(g)
        layout.addStretch(1)
        self._after_paint = _timer(self, 0, self._commit_paint)  # right after a stroke ends
        self._after_data = _timer(self, 0, self._data_replaced)  # once a new array is in place
        self._recheck = _timer(self, 400, self.check_box.live.start)  # the check waits for a pause
        self.viewer.layers.selection.events.active.connect(self._on_active)
        self.viewer.layers.events.inserted.connect(self._on_active)
        self.viewer.layers.events.removed.connect(self._on_active)
        self.viewer.mouse_move_callbacks.append(self._on_mouse_move)
        self._on_active()

    # -- building ----------------------------------------------------------------------
    def _paint_group(self) -> PaintBox:
        box = PaintBox(_ALL_NAMES, self.pick)
        self.search, self.painting, self.under = box.search, box.painting, box.under
        box.search.setToolTip("Type a name and press Enter. Next / previous level: "
                              f"{shortcut_of('napari-spine:next_level')} / {shortcut_of('napari-spine:previous_level')} "
                              "(napari Preferences > Shortcuts)")
        self.paint_box = box
        box.layout().addWidget(planes_button(self.viewer))  # paint in any of the three planes
        return box

    def _levels_group(self) -> LevelsBox:
        box = LevelsBox(self._actions(), _ALL_NAMES)
        for name in ("from_level", "to_level", "struct_a", "struct_b", "min_volume", "slice_a", "slice_b",
                     "buttons"):
            setattr(self, name, getattr(box, name))
        self.shift_up, self.shift_down = self.buttons["Shift levels up"], self.buttons["Shift levels down"]
        for cb in (box.t13, box.l6):
            cb.toggled.connect(lambda _on: self.set_transitional(box.transitional()))
        self.levels_box = box
        return box

    def _actions(self) -> list[tuple[str, str, Any]]:
        a, b = self._id_a, self._id_b
        return [
            ("Shift levels up", "The levels from From to To one step cranial (L4 -> L3), discs and landmarks "
             "with them; C1 and S1 stay unless chosen", lambda: self.shift(-1)),
            ("Shift levels down", "The levels from From to To one step caudal (L3 -> L4), discs and landmarks "
             "with them; C1 and S1 stay unless chosen", lambda: self.shift(+1)),
            ("Relabel A as B", "", lambda: self._op("relabel", corr.relabel, a, b)),
            ("Swap A and B", "", lambda: self._op("swap", corr.swap_levels, a, b)),
            ("Merge A into B", "", lambda: self._op("merge", corr.merge, a, b)),
            ("Split A at plane into B", "Split A along the line of the 'split plane' points (sagittal view): "
             "the part above the line stays A, the part below becomes B; one point splits at the axial "
             "plane through it", self.split_at_plane),
            ("Revert A to loaded", "", self.revert_structure),
            ("Remove islands", "", lambda: self._op("remove islands", corr.remove_islands,
                                                    self.min_volume.value, self._spacing)),
            ("Keep largest piece", "", lambda: self._op("keep largest", corr.keep_largest)),
            ("Fill holes", "", lambda: self._op("fill holes", corr.fill_holes)),
            ("Interpolate A between slices", "", lambda: self._op(
                "interpolate", corr.interpolate_between_slices, a, self.slice_a.value,
                self.slice_b.value, lambda: 0)),
        ]

    def _locks_group(self) -> LocksBox:
        self.lock_box = LocksBox(self.session, self._locks_ticked)
        self.locks = self.lock_box.list
        return self.lock_box

    def _check_group(self) -> CheckBox:
        self.check_box = CheckBox(self.ws, self._spacing, lambda: self.sessions.get(self._key(self._layer))
                                  if self._layer is not None else None)
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
        """The correction session of a labels layer (made, with its journal, on first use,
        and anew when the layer shows another case, as after the dataset panel's Next)."""
        layer = layer or self.labels_layer()
        if layer is None:
            return None
        key = self._key(layer)
        case = self.ws.case_of(layer)
        ident = case.key if case is not None else layer.name
        s = self.sessions.get(key)
        if s is not None and (self._idents.get(key) == ident and s.recorded.shape == tuple(layer.data.shape)):
            return s
        if s is not None:
            s.close()  # the layer shows another case now: the earlier one's lock goes
        source = (case.source.label_path or case.source.path or case.metadata.get("labels_path")
                  or case.metadata.get("image_path") or None) if case is not None else None
        if case is not None and layer.name != f"{case.case_id} labels":
            # another labels layer of the case (a prediction, a second reader): its own journal
            journal_id, source = f"{ident}-{layer.name}", (f"{source}#{layer.name}" if source else None)
        else:
            journal_id = ident
        journal = corr.EditJournal(userdirs.journal_dir(), journal_id, layer.data.shape, source=source)
        points = self.ws.landmarks_layer(case) if case is not None else None
        lm = self.ws.landmarks_of(points) if points is not None else None
        s = self.sessions[key] = corr.CorrectionSession(np.asarray(layer.data), journal, landmarks=lm)
        self._idents[key] = ident
        self._cases[key] = case
        guard_layer(layer, self.confirm_leave, key)
        self.save_box.show_dicom(case)
        self.levels_box.set_sequence(self.settings(s).transitional())
        self._default_paint_label(layer, s)
        self._show_session_state(s, layer)
        return s

    def settings(self, s: corr.CorrectionSession) -> CaseSettings:
        """What is remembered with the session's case (its transitional levels)."""
        return CaseSettings(userdirs.data_dir(), s.journal.dir.name if s.journal is not None else "case")

    def set_output(self, folder: str | Path) -> None:
        """Save into another folder (remembered for the next launch); the journals stay in
        the user's data folder, so nothing pending is lost by a change of folder."""
        self.output = Path(folder).expanduser()
        self.save_box.out_edit.setText(str(self.output))
        userdirs.remember("output", str(self.output))

    def _on_active(self, *_: Any) -> None:
        layer = self.labels_layer()
        if layer is self._layer or (layer is not None and self._layer is not None
                                    and self._key(layer) == self._key(self._layer)):
            self._watch_points()  # a landmarks layer may have come (or gone) after the labels
            return
        if self._layer is not None:
            try:
                self._layer.events.paint.disconnect(self._on_paint)
                self._layer.events.data.disconnect(self._on_data)
                self._layer.events.selected_label.disconnect(self._show_painting)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._layer = layer
        if layer is None:
            return
        layer.events.paint.connect(self._on_paint)
        layer.events.data.connect(self._on_data)
        layer.events.selected_label.connect(self._show_painting)
        # napari's undo keys on this layer walk the one history (labels, landmarks, locks)
        layer.bind_key("Control-Z", lambda _ly: self.undo(), overwrite=True)
        layer.bind_key("Control-Shift-Z", lambda _ly: self.redo(), overwrite=True)
        self.session(layer)
        self._watch_points()
        self._refresh()
        self._show_painting()

    # -- picking ------------------------------------------------------------------------
    def pick(self, name: str) -> int | None:
        """Select the structure to paint by anatomical name."""
        try:
            sid = ontology.by_name(name).id
        except KeyError:
            self.paint_box.message.setText(f"No structure called {name!r}")
            return None
        self.paint_box.message.setText("")
        layer = self.labels_layer()
        if layer is not None:
            layer.selected_label = sid
            layer.mode = "paint"
        self._show_painting()
        return sid

    def step_level(self, step: int) -> None:
        """Move the painted structure to the next (+1) / previous (-1) level, discs included
        (T13 and L6 only when switched on or present)."""
        layer = self.labels_layer()
        if layer is None:
            return
        s = self.session(layer)
        on = set(self.levels_box.transitional()) | {ontology.name_of(i) for i in (s.present() if s else ())}
        order = [i for i in ontology.cranio_caudal_order()
                 if ontology.name_of(i if i < 100 else i - 100) not in {"T13", "L6"} - on]
        cur = int(layer.selected_label)
        k = order.index(cur) + step if cur in order else 0
        layer.selected_label = order[min(max(k, 0), len(order) - 1)]
        self._show_painting()

    def _default_paint_label(self, layer, s: corr.CorrectionSession) -> None:
        """A new case paints its first level present (cranio-caudal), not napari's label 1."""
        present = set(s.present())
        if int(layer.selected_label) in present and int(layer.selected_label) in ontology.BY_ID:
            return
        order = [i for i in ontology.cranio_caudal_order() if i in present]
        if order:
            layer.selected_label = order[0]

    def _show_painting(self, *_: Any) -> None:
        layer = self.labels_layer()
        if layer is not None:
            sid = int(layer.selected_label)
            self.painting.setText(f"Painting: {ontology.name_of(sid)} ({sid})")
            points = self._points
            if points is not None and sid in ontology.BY_ID:  # a new point names this structure
                try:
                    points.feature_defaults = {"name": f"{ontology.name_of(sid)} point",
                                               "structure": ontology.name_of(sid), "structure_id": sid}
                    points.current_face_color = np.asarray(ontology.color_of(sid))
                except (AttributeError, KeyError, ValueError, TypeError):
                    pass
        self.landmarks_box.show_layer(self._points)

    def _on_mouse_move(self, viewer, event) -> None:
        layer = self.labels_layer()
        value = layer.get_value(viewer.cursor.position, world=True) if layer is not None else None
        if value is not None and not isinstance(value, tuple):
            self.under.setText(f"Under cursor: {ontology.name_of(int(value)) if value else 'background'}")

    # -- locks and transitional levels ------------------------------------------------
    def locked_ids(self) -> list[int]:
        """The structures no edit may change."""
        s = self.session()
        return sorted(s.locked) if s is not None else []

    def lock(self, name: str, on: bool = True) -> None:
        """Lock (or unlock) a structure by name; a step of the history."""
        try:
            self.lock_box.lock(name, on)
        except KeyError as exc:
            self.levels_box.message.setText(f"Lock: {exc.args[0] if exc.args else exc}")

    def _locks_ticked(self, ids: set[int]) -> None:
        s = self.session()
        if s is not None and self._record(lambda: s.set_locks(ids)) is not None:
            self.history_box.message.setText(s.history.undo_stack[-1].op)
            self._refresh()

    def set_transitional(self, names: list[str]) -> None:
        """Switch the transitional levels (T13, L6) of the case on or off; remembered."""
        s = self.session()
        self.levels_box.set_sequence(names)
        if s is not None:
            try:
                self.settings(s).set_transitional(names)
            except OSError as exc:
                self.levels_box.message.setText(f"Transitional levels not remembered: {exc}")

    # -- validator ----------------------------------------------------------------------
    def validate(self) -> list[corr.Finding]:
        """Re-run the level-sequence check now and list its findings."""
        return self.check_box.check(self.labels_layer(), self._spacing())

    @property
    def findings(self) -> list[corr.Finding]:
        """The level-sequence check's findings as last listed."""
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
