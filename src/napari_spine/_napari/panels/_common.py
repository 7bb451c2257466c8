"""Small Qt pieces the panels share."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

__all__ = ["buttons", "note", "refill", "scrolling", "side_by_side", "swatch"]


def swatch(rgba) -> QPixmap:
    """A 14-pixel square of an RGBA colour (0-1 floats), for list items."""
    pm = QPixmap(14, 14)
    pm.fill(QColor.fromRgbF(*[float(c) for c in rgba]))
    return pm


def note(text: str = "", style: str = "") -> QLabel:
    """A word-wrapped label (status lines, hints, warnings)."""
    label = QLabel(text)
    label.setWordWrap(True)
    if style:
        label.setStyleSheet(style)
    return label


def refill(combo: QComboBox, items: list[str], default: int = 0) -> None:
    """Replace a combo box's items, keeping the current choice when it is still offered."""
    keep = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(items)
    if keep in items:
        combo.setCurrentText(keep)
    elif len(items) > default:
        combo.setCurrentIndex(default)
    combo.blockSignals(False)


def scrolling(panel: QWidget) -> QVBoxLayout:
    """Give ``panel`` a vertical scroll area and return the layout to fill: the panel fits a
    1366x768 screen however many groups it has."""
    inner = QWidget()
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # fit the dock's width
    area.setWidget(inner)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return QVBoxLayout(inner)


def side_by_side(*items) -> QWidget:
    """Widgets in a row; an item ``(widget, stretch)`` gives that widget a stretch factor."""
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for it in items:
        w, stretch = it if isinstance(it, tuple) else (it, 0)
        row.addWidget(w, stretch)
    return box


def buttons(owner, specs) -> list:
    """Push buttons from ``(attribute, text, slot)``: each is connected and set on ``owner``."""
    out = []
    for attr, text, slot in specs:
        b = QPushButton(text)
        b.clicked.connect(slot)
        setattr(owner, attr, b)
        out.append(b)
    return out
