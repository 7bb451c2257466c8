"""The per-level table of the QA panel: metrics, a flag and a comment per level."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ...qa.metrics import LevelRow

__all__ = ["COLUMNS", "LevelTable"]

COLUMNS = ("level", "Dice", "HD95", "id.", "Δ mL", "flag", "comment")
_FLAG, _COMMENT = 5, 6


class LevelTable(QTableWidget):
    """One row per level: read-only metrics (Dice below 0.8 in red), an editable flag and
    comment that the reviewer's decision stores."""

    def __init__(self):
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_COMMENT, QHeaderView.ResizeMode.Stretch)  # the rest of the width
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        tips = ("level", "Dice coefficient", "95th-percentile Hausdorff distance, mm",
                "identified: centroid within 20 mm of the reference's and the closest",
                "volume difference, candidate - reference, mL", "flag for follow-up", "comment")
        for k, tip in enumerate(tips):
            self.horizontalHeaderItem(k).setToolTip(tip)

    def show_rows(self, rows: Sequence[LevelRow], flags: Mapping[int, tuple[bool, str]]) -> None:
        """Fill the table; ``flags`` (structure id -> (flag, comment)) are earlier decisions."""
        self.setRowCount(len(rows))
        for i, r in enumerate(rows):
            vals = [r.name, f"{r.dice:.3f}", "" if math.isnan(r.hd95_mm) else f"{r.hd95_mm:.1f}",
                    "" if r.identified is None else ("yes" if r.identified else "NO"),
                    f"{r.volume_diff_ml:+.2f}"]
            for c, v in enumerate(vals):
                item = QTableWidgetItem(v)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if c == 1 and r.dice < 0.8:
                    item.setForeground(Qt.GlobalColor.red)
                self.setItem(i, c, item)
            flag, comment = flags.get(r.structure_id, (False, ""))
            fl = QTableWidgetItem("")
            fl.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            fl.setCheckState(Qt.CheckState.Checked if flag else Qt.CheckState.Unchecked)
            self.setItem(i, _FLAG, fl)
            self.setItem(i, _COMMENT, QTableWidgetItem(comment))

    def decisions(self, rows: Sequence[LevelRow]) -> list[tuple[int, bool, str]]:
        """``(structure id, flag, comment)`` of every row the reviewer flagged or commented."""
        out = []
        for i, r in enumerate(rows[: self.rowCount()]):
            flag = self.item(i, _FLAG).checkState() == Qt.CheckState.Checked
            comment = self.item(i, _COMMENT).text() if self.item(i, _COMMENT) else ""
            if flag or comment:
                out.append((r.structure_id, flag, comment))
        return out

    def toggle_flag(self, structure_id: int, rows: Sequence[LevelRow]) -> bool:
        """Flip the flag of a structure's row; False when it has no row."""
        for i, r in enumerate(rows[: self.rowCount()]):
            if r.structure_id == structure_id:
                item = self.item(i, _FLAG)
                on = item.checkState() != Qt.CheckState.Checked
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                return True
        return False
