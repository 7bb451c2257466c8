"""Small Qt pieces the panels share."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QPixmap
from qtpy.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

__all__ = ["buttons", "narrow", "note", "refill", "scrolling", "side_by_side", "swatch"]


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
    from qtpy.QtCore import QTimer

    later = QTimer(panel)  # the panel's child: never fires after the panel is deleted
    later.setSingleShot(True)
    later.timeout.connect(lambda: narrow(panel))  # once the panel has all its controls
    later.start(0)
    return QVBoxLayout(inner)


def narrow(panel: QWidget) -> None:
    """Let ``panel`` fit a narrow dock: combo boxes no longer take the width of their
    longest item (the list still shows it in full), spin boxes not that of their maximum."""
    for combo in panel.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(6)
        combo.setMinimumWidth(80)  # an explicit minimum: Qt keeps the old size hint cached
    for spin in panel.findChildren(QAbstractSpinBox):
        spin.setMinimumWidth(70)  # not the width of the largest value allowed


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

