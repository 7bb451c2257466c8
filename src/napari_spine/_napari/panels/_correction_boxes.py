"""The "Levels" and "Locked structures" parts of the correction panel."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from ... import correction as corr
from ...anatomy import ontology
from ._common import note, refill, side_by_side
from ._correction_live import LiveCheck

__all__ = ["CheckBox", "HistoryBox", "LevelsBox", "LocksBox", "PaintBox"]


class PaintBox(QGroupBox):
    """Which structure the brush paints: a search by name, and what is under the cursor."""

    def __init__(self, names: list[str], pick: Callable[[str], Any]):
        super().__init__("Paint")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Structure to paint, e.g. L3 or L4/L5")
        completer = QCompleter(names, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.search.setCompleter(completer)
        self.search.returnPressed.connect(lambda: pick(self.search.text()))
        self.painting = QLabel("Painting: -")
        self.painting.setStyleSheet("font-weight: bold;")
        self.under = QLabel("Under cursor: -")
        self.message = note(style="color: #ffae42;")
        lay = QVBoxLayout(self)
        for w in (self.search, self.message, self.painting, self.under):
            lay.addWidget(w)


class HistoryBox(QGroupBox):
    """Undo and redo of the correction history (labels, landmarks and locks together)."""

    def __init__(self, undo: Callable[[], Any], redo: Callable[[], Any]):
        super().__init__("History")
        self.undo_btn, self.redo_btn = QPushButton("Undo"), QPushButton("Redo")
        self.undo_btn.setToolTip("Undo the last edit, shift, lock change or landmark move (Ctrl+Z on the labels)")
        self.redo_btn.setToolTip("Redo what was undone (Ctrl+Shift+Z on the labels)")
        self.undo_btn.clicked.connect(lambda: undo())
        self.redo_btn.clicked.connect(lambda: redo())
        self.message = note(style="color: #9aa0a6;")
        lay = QVBoxLayout(self)
        lay.addWidget(side_by_side((self.undo_btn, 1), (self.redo_btn, 1)))
        lay.addWidget(self.message)

    def show_state(self, session: Any) -> None:
        """Enable the buttons by what the history holds."""
        h = session.history if session is not None else None
        self.undo_btn.setEnabled(bool(h and h.can_undo))
        self.redo_btn.setEnabled(bool(h and h.can_redo))


#: button captions for a narrow dock (the full name is the tooltip and the key in ``buttons``)
_SHORT = {"Shift levels up": "Shift up ↑", "Shift levels down": "Shift down ↓", "Relabel A as B": "Relabel A → B",
          "Swap A and B": "Swap A ↔ B", "Merge A into B": "Merge A → B",
          "Split A at plane into B": "Split A, below → B",
          "Revert A to loaded": "Revert A", "Remove islands": "Remove islands", "Keep largest piece": "Keep largest",
          "Fill holes": "Fill holes", "Interpolate A between slices": "Interpolate A"}


class LevelsBox(QGroupBox):
    """Level operations: the range to shift (From, To), the transitional levels, structures
    A and B, clean-up settings, and one button per ``(text, tooltip, slot)`` action (the
    shifts first). Messages of these controls appear right under them."""

    def __init__(self, actions: Sequence[tuple[str, str, Callable[[], Any]]], names: list[str]):
        super().__init__("Levels")
        self.from_level, self.to_level = QComboBox(), QComboBox()
        self.from_level.setToolTip("First level to shift; C1 and S1 only move when chosen here or as To")
        self.to_level.setToolTip("Last level to shift")
        self.t13, self.l6 = QCheckBox("T13"), QCheckBox("L6")
        for cb, what in ((self.t13, "thirteen thoracic"), (self.l6, "six lumbar")):
            cb.setToolTip(f"Transitional anatomy: this spine has {what} vertebrae (remembered with the case)")
        self.set_sequence(())
        self.struct_a, self.struct_b = QComboBox(), QComboBox()
        for cb, default in ((self.struct_a, "L3"), (self.struct_b, "L4")):
            cb.setEditable(True)
            cb.addItems(names)
            cb.setCurrentText(default)
        self.min_volume = QDoubleSpinBox()
        self.min_volume.setRange(0, 1e6)
        self.min_volume.setValue(100.0)
        self.min_volume.setSuffix(" mm³")
        self.slice_a, self.slice_b = QSpinBox(), QSpinBox()
        for sb in (self.slice_a, self.slice_b):
            sb.setRange(0, 100000)
        self.message = note(style="color: #ffae42;")
        self.buttons: dict[str, QPushButton] = {}
        for text, tip, fn in actions:
            b = QPushButton(_SHORT.get(text, text))  # short enough for two in a narrow dock
            b.setToolTip(tip or text)
            b.clicked.connect(lambda _c=False, f=fn, t=text: self._run(t, f))
            self.buttons[text] = b
        self._lay_out(list(self.buttons.values()))

    def _lay_out(self, btns: list[QPushButton]) -> None:
        form = QFormLayout(self)
        form.addRow("From", self.from_level)
        form.addRow("To", self.to_level)
        form.addRow("Transitional", side_by_side(self.t13, self.l6))
        form.addRow(side_by_side((btns[0], 1), (btns[1], 1)))
        form.addRow("A", self.struct_a)
        form.addRow("B", self.struct_b)
        grid = QGridLayout()
        for k, b in enumerate(btns[2:]):
            grid.addWidget(b, k // 2, k % 2)
        form.addRow(grid)
        self.min_volume.setToolTip("Remove islands: pieces smaller than this are erased")
        form.addRow("Islands <", self.min_volume)
        self.slice_a.setToolTip("First sagittal slice of the interpolation")
        self.slice_b.setToolTip("Last sagittal slice of the interpolation")
        form.addRow("Slices", side_by_side(self.slice_a, self.slice_b))
        form.addRow(self.message)

    def _run(self, text: str, fn: Callable[[], Any]) -> None:
        """Run a button's action; whatever goes wrong is said under the buttons, never raised."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - nothing may escape into Qt's event loop
            self.message.setText(f"{_SHORT.get(text, text)}: {exc}")

    def transitional(self) -> list[str]:
        """The transitional levels switched on."""
        return [cb.text() for cb in (self.t13, self.l6) if cb.isChecked()]

    def set_sequence(self, transitional: Sequence[str]) -> None:
        """Offer the levels of the sequence (with the transitional ones switched on)."""
        for cb in (self.t13, self.l6):
            cb.blockSignals(True)
            cb.setChecked(cb.text() in transitional)
            cb.blockSignals(False)
        levels = [ontology.name_of(v) for v in corr.level_sequence(transitional)]
        refill(self.from_level, ["whole case", *levels])
        refill(self.to_level, ["end of the case", *levels])

    def shift_range(self) -> tuple[str | None, str | None]:
        """The chosen From and To levels (None: the whole case / its end)."""
        start = None if self.from_level.currentIndex() <= 0 else self.from_level.currentText()
        end = None if self.to_level.currentIndex() <= 0 else self.to_level.currentText()
        return start, end


class LocksBox(QGroupBox):
    """Tick boxes of the structures present; ticking one is a step of the history."""

    def __init__(self, session: Callable[[], Any], changed: Callable[[set[int]], Any]):
        super().__init__("Locked structures")
        self.session = session
        self.list = QListWidget()
        self.list.setToolTip("Ticked structures cannot be changed by painting or by any operation")
        self.list.setMaximumHeight(110)
        self.list.itemChanged.connect(lambda _item: changed(self.ticked()))
        QVBoxLayout(self).addWidget(self.list)
        self._shown: tuple = ()

    def fill(self, present: Sequence[int], locked: Collection[int]) -> None:
        """List ``present`` structures, ticked where ``locked`` (only redrawn on a change)."""
        shown = (tuple(ontology.sort_cranio_caudal(present)), frozenset(locked))
        if shown == self._shown:
            return
        self._shown = shown
        self.list.blockSignals(True)
        self.list.clear()
        for sid in shown[0]:
            item = QListWidgetItem(ontology.name_of(sid))
            item.setData(Qt.ItemDataRole.UserRole, int(sid))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if sid in shown[1] else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def ticked(self) -> set[int]:
        """The ids ticked now."""
        return {int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked}

    def lock(self, name: str, on: bool = True) -> None:
        """Tick (or untick) a structure by name (KeyError for an unknown name)."""
        sid = ontology.by_name(name).id
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == sid:
                self.list.item(i).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                return
        raise KeyError(f"{ontology.name_of(sid)} is not in the labels")


class _IndexCache:
    """The structure index of one session's labels (no panel, no viewer: a running check
    keeps neither alive)."""

    def __init__(self):
        self._owner: weakref.ref | None = None
        self.shape: tuple[int, ...] = ()
        self.index: corr.StructureIndex | None = None

    def fits(self, session: Any, shape: tuple[int, ...]) -> bool:
        owner = self._owner() if self._owner is not None else None
        return self.index is not None and owner is session and session is not None and self.shape == shape

    def set(self, session: Any, shape: tuple[int, ...], index: corr.StructureIndex | None) -> None:
        self._owner = weakref.ref(session) if session is not None else None
        self.shape, self.index = tuple(shape), index


class CheckBox(QGroupBox):
    """The level-sequence check of the labels being corrected, run in a worker after edits;
    click a finding to go to it."""

    def __init__(self, ws: Any, spacing: Callable[[], Sequence[float]], session: Callable[[], Any] | None = None):
        super().__init__("Level check")
        self.ws = ws
        self.spacing = spacing
        self.session = session or (lambda: None)
        self.cache = _IndexCache()  # the structures as last measured, updated by each step's box
        self.findings: list[corr.Finding] = []
        self.list = QListWidget()
        self.list.setToolTip("Click a problem to go to it")
        self.list.itemClicked.connect(lambda item: self.jump_to(self.list.row(item), self.ws.labels_layer()))
        QVBoxLayout(self).addWidget(self.list)
        self.live = LiveCheck(self._job, self.show)

    def _job(self) -> Callable[[], tuple[bool, list[corr.Finding]]]:
        """The check of the labels as they are now: a function of the array, the spacing and
        the structure index only. After a step only the structures it touched are measured
        again, inside their boxes; a new session (another case, a restore) measures all."""
        layer = self.ws.labels_layer()
        if layer is None:
            return lambda: (False, [])
        data, spacing = np.asarray(layer.data), tuple(self.spacing())
        s = self.session()
        touched = s.take_touched() if s is not None else None
        cache = self.cache
        fresh = touched is None or not cache.fits(s, data.shape)
        owner = s

        def run() -> tuple[bool, list[corr.Finding]]:
            try:
                if fresh:
                    cache.set(owner, data.shape, corr.StructureIndex(data))
                else:
                    for ids, box in touched:
                        cache.index.update(data, ids, box)
                return True, corr.validate_sequence(data, spacing, stats=cache.index.stats)
            except BaseException:
                cache.set(None, (), None)  # half-updated: measure everything next time
                raise
        return run

    def check(self, layer: Any = None, spacing: Sequence[float] | None = None) -> list[corr.Finding]:
        """Run :func:`~napari_spine.correction.validate_sequence` now and list its findings."""
        layer = layer if layer is not None else self.ws.labels_layer()
        sp = spacing if spacing is not None else self.spacing()
        found = corr.validate_sequence(np.asarray(layer.data), sp) if layer is not None else []
        self.show((layer, found))
        return self.findings

    def show(self, result: tuple[Any, list[corr.Finding]]) -> None:
        """List the findings of a check (``(checked, findings)``)."""
        layer, self.findings = result
        self.list.clear()
        for f in self.findings:
            item = QListWidgetItem(f"{'Error' if f.severity == 'error' else 'Check'}: {f.message}")
            item.setForeground(Qt.GlobalColor.red if f.severity == "error" else Qt.GlobalColor.yellow)
            self.list.addItem(item)
        if layer is not None and not self.findings:
            self.list.addItem(QListWidgetItem("No problems found in the level sequence."))

    def jump_to(self, row: int, layer: Any) -> tuple[float, ...] | None:
        """Move the view to a finding (its sagittal slice and centre)."""
        if not 0 <= row < len(self.findings) or layer is None:
            return None
        return self.ws.centre_on(layer, self.findings[row].position)
