"""Small widget factories the panels share: spin boxes, buttons, rows and result tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLayout,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QWidget,
)

__all__ = ["button", "double_spin", "hbox", "int_spin", "set_panes", "table"]


def double_spin(
    lo: float, hi: float, value: float, step: float, decimals: int, suffix: str = ""
) -> QDoubleSpinBox:
    """A spin box over [lo, hi] showing ``decimals`` decimals and ``suffix`` (e.g. " V"); it
    reports a value when editing ends, not at every keystroke."""
    sb = QDoubleSpinBox()
    sb.setRange(lo, hi)
    sb.setDecimals(decimals)
    sb.setSingleStep(step)
    sb.setValue(value)
    sb.setSuffix(suffix)
    sb.setKeyboardTracking(False)
    return sb


def int_spin(lo: int, hi: int, value: int | None = None, tooltip: str = "") -> QSpinBox:
    """An integer spin box over [lo, hi] at ``value`` (default: ``lo``)."""
    sb = QSpinBox()
    sb.setRange(lo, hi)
    if value is not None:
        sb.setValue(value)
    if tooltip:
        sb.setToolTip(tooltip)
    return sb


def button(text: str, slot: Callable[..., object], tooltip: str = "") -> QPushButton:
    """A push button that calls ``slot`` when clicked."""
    b = QPushButton(text)
    if tooltip:
        b.setToolTip(tooltip)
    b.clicked.connect(slot)
    return b


def hbox(*items: QWidget | QLayout | tuple[QWidget, int]) -> QHBoxLayout:
    """A row of widgets (``(widget, stretch)`` for a stretch factor) and layouts."""
    row = QHBoxLayout()
    for item in items:
        if isinstance(item, tuple):
            row.addWidget(*item)
        elif isinstance(item, QLayout):
            row.addLayout(item)
        else:
            row.addWidget(item)
    return row


def table(
    headers: Sequence[str],
    *,
    stretch: int = 0,
    single_selection: bool = False,
    sort: tuple[int, Qt.SortOrder] | None = (0, Qt.SortOrder.AscendingOrder),
) -> QTableWidget:
    """A read-only table selecting whole rows: column ``stretch`` takes the free width, the
    others fit their contents, long text is elided in the middle. ``sort``: (column, order)
    sorted by at first, the user may sort by any column; ``None``: rows stay in insertion
    order."""
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(list(headers))
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    if single_selection:
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.verticalHeader().setVisible(False)
    t.setWordWrap(False)
    t.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    hh = t.horizontalHeader()
    for j in range(len(headers)):
        mode = (
            QHeaderView.ResizeMode.Stretch
            if j == stretch
            else QHeaderView.ResizeMode.ResizeToContents
        )
        hh.setSectionResizeMode(j, mode)
    if sort is not None:
        hh.setSortIndicator(*sort)  # Qt's default is descending
        t.setSortingEnabled(True)
    return t


def set_panes(split: QSplitter, stretch: Sequence[int], sizes: Sequence[int]) -> None:
    """The splitter's panes, in order: their stretch factors and initial sizes (px)."""
    for i, factor in enumerate(stretch):
        split.setStretchFactor(i, factor)
    split.setSizes(list(sizes))
