"""The "Levels" and "Locked structures" parts of the correction panel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
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
from ...anatomy.labelmaps import label_counts

__all__ = ["CheckBox", "LevelsBox", "LocksBox", "PaintBox"]


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
        lay = QVBoxLayout(self)
        for w in (self.search, self.painting, self.under):
            lay.addWidget(w)


class LevelsBox(QGroupBox):
    """Level operations: structures A and B, the first level to shift, clean-up settings,
    and one button per ``(text, tooltip, slot)`` action (the first two side by side on top)."""

    def __init__(self, actions: Sequence[tuple[str, str, Callable[[], Any]]], names: list[str]):
        super().__init__("Levels")
        self.from_level = QComboBox()
        self.from_level.addItems(["whole case", *[ontology.name_of(v) for v in corr.level_sequence(("T13", "L6"))]])
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
        grid = QGridLayout(self)
        grid.addWidget(QLabel("From"), 0, 0)
        grid.addWidget(self.from_level, 0, 1)
        self.buttons: dict[str, QPushButton] = {}
        for k, (text, tip, fn) in enumerate(actions):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(fn)
            self.buttons[text] = b
            grid.addWidget(b, 1 if k < 2 else 4 + (k - 2) // 2, k % 2)  # shifts first, then A/B
        for row, (name, cb) in enumerate((("A", self.struct_a), ("B", self.struct_b))):
            grid.addWidget(QLabel(name), 2 + row, 0)
            grid.addWidget(cb, 2 + row, 1)
        form = QFormLayout()
        form.addRow("Islands below", self.min_volume)
        sl = QHBoxLayout()
        sl.addWidget(self.slice_a)
        sl.addWidget(self.slice_b)
        form.addRow("Slices (sagittal)", sl)
        grid.addLayout(form, 4 + (len(self.buttons) - 1) // 2, 0, 1, 2)


class LocksBox(QGroupBox):
    """Tick boxes of the structures present; ticked ones are the session's locks."""

    def __init__(self, session: Callable[[], Any]):
        super().__init__("Locked structures")
        self.session = session
        self.list = QListWidget()
        self.list.setToolTip("Ticked structures cannot be changed by painting or by any operation")
        self.list.setMaximumHeight(110)
        self.list.itemChanged.connect(lambda _item: self._sync())
        QVBoxLayout(self).addWidget(self.list)

    def fill(self, layer: Any) -> None:
        """List the structures of ``layer``, ticked where the session locks them."""
        s = self.session()
        self.list.blockSignals(True)
        self.list.clear()
        present = label_counts(np.asarray(layer.data)) if layer is not None else {}
        for sid in ontology.sort_cranio_caudal(present):
            item = QListWidgetItem(ontology.name_of(sid))
            item.setData(Qt.ItemDataRole.UserRole, int(sid))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if s is not None and sid in s.locked
                               else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def _sync(self) -> None:
        s = self.session()
        if s is not None:
            s.locked = {int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())
                        if self.list.item(i).checkState() == Qt.CheckState.Checked}

    def lock(self, name: str, on: bool = True) -> None:
        """Tick (or untick) a structure by name."""
        sid = ontology.by_name(name).id
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == sid:
                self.list.item(i).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)


class CheckBox(QGroupBox):
    """The level-sequence check of the labels being corrected; click a finding to go to it."""

    def __init__(self, ws: Any):
        super().__init__("Level check")
        self.ws = ws
        self.findings: list[corr.Finding] = []
        self.list = QListWidget()
        self.list.setToolTip("Click a problem to go to it")
        self.list.itemClicked.connect(lambda item: self.jump_to(self.list.row(item), self.ws.labels_layer()))
        QVBoxLayout(self).addWidget(self.list)

    def check(self, layer: Any, spacing: Sequence[float]) -> list[corr.Finding]:
        """Re-run :func:`~napari_spine.correction.validate_sequence` and list its findings."""
        self.list.clear()
        self.findings = corr.validate_sequence(np.asarray(layer.data), spacing) if layer is not None else []
        for f in self.findings:
            item = QListWidgetItem(f"{'Error' if f.severity == 'error' else 'Check'}: {f.message}")
            item.setForeground(Qt.GlobalColor.red if f.severity == "error" else Qt.GlobalColor.yellow)
            self.list.addItem(item)
        if layer is not None and not self.findings:
            self.list.addItem(QListWidgetItem("No problems found in the level sequence."))
        return self.findings

    def jump_to(self, row: int, layer: Any) -> tuple[float, ...] | None:
        """Move the view to a finding (its sagittal slice and centre)."""
        if not 0 <= row < len(self.findings) or layer is None:
            return None
        return self.ws.centre_on(layer, self.findings[row].position)
