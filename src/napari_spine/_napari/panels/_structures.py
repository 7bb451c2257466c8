"""The structures of the labels layer on show: names, colours, volumes, the label scheme.

Part of the "Spine case" panel. Names come from the case's label table
(:meth:`~napari_spine.SpineCase.label_table`): the file's own names first, then the scheme.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QIcon
from qtpy.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from ...anatomy import ontology
from ...anatomy.labelmaps import get_label_map, label_counts
from ...case import SpineCase
from .._workspace import Workspace
from ._common import note, swatch

__all__ = ["StructureBox"]


class StructureBox(QGroupBox):
    """List of structures (click one to go to it), scheme picker with undo."""

    def __init__(self, ws: Workspace, status: QLabel):
        super().__init__("Structures")
        self.ws, self.status = ws, status
        self.list = QListWidget()
        self.list.setToolTip("Structures in the labels layer; click one to go to it")
        self.list.itemClicked.connect(
            lambda item: self.go_to(int(item.data(Qt.ItemDataRole.UserRole) or 0)))
        self.scheme = QComboBox()
        self.scheme.setToolTip("How the label file's ids are read; the schemes listed can "
                               "read every id of the file. Changing it renames in place.")
        self.scheme.activated.connect(lambda _i: self.set_scheme(self.scheme.currentText()))
        self.names_from = note(style="color: #9aa0a6;")
        self.undo_btn = QPushButton("Undo")
        self.undo_btn.setToolTip("Go back to the scheme used before the last change")
        self.undo_btn.setEnabled(False)
        self.undo_btn.clicked.connect(lambda: self.undo_scheme())
        self._history: list[SpineCase] = []
        self._schemes_for: SpineCase | None = None
        self._others: tuple = (None, [], {})
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Scheme"))
        row.addWidget(self.scheme, 1)
        row.addWidget(self.undo_btn)
        lay.addLayout(row)
        lay.addWidget(self.names_from)
        lay.addWidget(self.list)
        # recount shortly after an edit (painting fires many events)
        self._recount = QTimer(self)
        self._recount.setSingleShot(True)
        self._recount.setInterval(400)
        self._recount.timeout.connect(self.refresh)
        self._watched = None

    # -- the list ----------------------------------------------------------------------
    def _watch(self, layer) -> None:
        if layer is self._watched:
            return
        if self._watched is not None:
            self._watched.events.paint.disconnect(self._schedule)
            self._watched.events.data.disconnect(self._schedule)
        self._watched = layer
        if layer is not None:
            layer.events.paint.connect(self._schedule)
            layer.events.data.connect(self._schedule)

    def _schedule(self, event: Any = None) -> None:
        self._recount.start()

    def refresh(self, *_: Any) -> None:
        """Rebuild the list (and the scheme choices when the case changed)."""
        self.list.clear()
        layer = self.ws.labels_layer()
        self._watch(layer)
        case = self.ws.case_of(layer)
        if self._schemes_for is not case:  # the picker follows the case shown
            self._schemes_for = case
            self._fill_schemes(case)
        if layer is None:
            return
        counts = label_counts(np.asarray(layer.data))
        vox_ml = float(np.prod(layer.scale[-3:])) / 1000.0
        present = set(counts)
        for sid in ontology.sort_cranio_caudal(counts):
            item = QListWidgetItem(f"{ontology.display_name(sid, present)}  ({counts[sid] * vox_ml:.2f} mL)")
            if sid in ontology.BY_ID:
                item.setIcon(QIcon(swatch(ontology.BY_ID[sid].color)))
            item.setData(Qt.ItemDataRole.UserRole, int(sid))
            self.list.addItem(item)
        if case is not None:
            self._add_others(case, vox_ml)

    def _add_others(self, case: SpineCase, vox_ml: float) -> None:
        """Structures of the file outside the spine table (organs ...), with their own names
        and colours, as loaded; they are not part of the spine labels layer."""
        others, native_counts = self.other_structures(case)
        if not others:
            return
        head = QListWidgetItem(f"Other structures ({len(others)}, as loaded; names: {others[0].source})")
        head.setFlags(Qt.ItemFlag.NoItemFlags)
        self.list.addItem(head)
        for e in others:
            item = QListWidgetItem(f"  {e.name}  ({native_counts.get(e.native_id, 0) * vox_ml:.2f} mL)")
            item.setIcon(QIcon(swatch(e.color)))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.list.addItem(item)

    def other_structures(self, case: SpineCase) -> tuple[list, dict[int, int]]:
        """The case's structures outside the spine table and their voxel counts, worked
        out once per loaded case (the file's own ids do not change while it is shown)."""
        if self._others[0] is not case:
            others = case.other_structures()
            counts = (label_counts(np.asarray(case.native_labels))
                      if others and case.native_labels is not None else {})
            self._others = (case, others, counts)
        return self._others[1], self._others[2]

    def other_at(self, layer, world) -> str:
        """'background', or the file's own name of a structure outside the spine table."""
        case = self.ws.case_of(layer)
        if case is None or case.native_labels is None:
            return "background"
        ijk = np.round(np.asarray(layer.world_to_data(world))[-3:]).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= case.native_labels.shape):
            return "background"
        native = int(case.native_labels[tuple(ijk)])
        if not native:
            return "background"
        entry = next((e for e in self.other_structures(case)[0] if e.native_id == native), None)
        return f"{entry.name} (other structure)" if entry is not None else f"Label {native}"

    def go_to(self, structure_id: int) -> tuple[float, ...] | None:
        """Centre the view on a structure (the slice through its centre)."""
        layer = self.ws.labels_layer()
        if layer is None or not structure_id:
            return None
        from scipy import ndimage

        data = np.asarray(layer.data)
        sl = ndimage.find_objects((data == structure_id).astype(np.uint8, copy=False))
        if not sl or sl[0] is None:
            return None
        box = sl[0]
        centre = np.array([b.start for b in box]) + np.argwhere(data[box] == structure_id).mean(axis=0)
        return self.ws.centre_on(layer, centre)

    # -- the scheme ----------------------------------------------------------------------
    def _fill_schemes(self, case: SpineCase | None) -> None:
        self.scheme.blockSignals(True)
        self.scheme.clear()
        if case is not None and case.labels is not None:
            self.scheme.addItems(list(case.fitting_schemes()))
            self.scheme.setCurrentText(case.label_scheme)
            lm = get_label_map(case.label_scheme)
            self.names_from.setText(f"Names from: {lm.source} ({lm.description})")
        else:
            self.names_from.setText("")
        self.scheme.setEnabled(self.scheme.count() > 1)
        self.scheme.blockSignals(False)

    def set_scheme(self, scheme: str) -> bool:
        """Read the labels layer's file ids in another scheme, in place (the image stays);
        :meth:`undo_scheme` goes back."""
        case = self.ws.case_of(self.ws.labels_layer())
        if case is None or scheme == case.label_scheme:
            return False
        try:
            new = case.with_scheme(scheme)
        except (ValueError, KeyError) as exc:  # LabelMapError is a ValueError: shown, not raised
            self.status.setText(f"Scheme not changed: {exc}")
            self._fill_schemes(case)
            return False
        self._history.append(case)
        self.ws.swap_case(case, new)
        self.refresh()
        self.undo_btn.setEnabled(True)
        self.status.setText(f"Labels read as {new.label_scheme}")
        return True

    def undo_scheme(self) -> bool:
        """Go back to the scheme before the last :meth:`set_scheme`."""
        case = self.ws.case_of(self.ws.labels_layer())
        if not self._history or case is None:
            return False
        old = self._history.pop()
        self.ws.swap_case(case, old)
        self.refresh()
        self.undo_btn.setEnabled(bool(self._history))
        self.status.setText(f"Labels read as {old.label_scheme} again")
        return True
