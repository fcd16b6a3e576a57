"""Small widget factories the panels share: spin boxes, buttons, rows and result tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PyQt6.QtCore import QSize, Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLayout,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "button",
    "choice",
    "double_spin",
    "enable_items",
    "form_group",
    "hbox",
    "int_spin",
    "scroll_column",
    "set_panes",
    "table",
]


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


def choice(items: Sequence[tuple[str, object]], tooltip: str = "") -> QComboBox:
    """A drop-down list of ``(text, data)`` items; ``currentData()`` gives the chosen data."""
    combo = QComboBox()
    for text, data in items:
        combo.addItem(text, data)
    if tooltip:
        combo.setToolTip(tooltip)
    return combo


def form_group(title: str) -> tuple[QGroupBox, QFormLayout]:
    """A group box titled ``title`` and the form layout that holds its rows."""
    group = QGroupBox(title)
    return group, QFormLayout(group)


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
    stretch: int | None = 0,
    single_selection: bool = False,
    sort: tuple[int, Qt.SortOrder] | None = (0, Qt.SortOrder.AscendingOrder),
    elide: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle,
) -> QTableWidget:
    """A read-only table selecting whole rows: column ``stretch`` takes the free width (None:
    every column fits its contents and the table scrolls sideways), the others fit their
    contents, long text is elided per ``elide``. ``sort``: (column, order) sorted by at first,
    the user may sort by any column; ``None``: rows stay in insertion order."""
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(list(headers))
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    if single_selection:
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.verticalHeader().setVisible(False)
    t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 8)  # compact rows
    t.horizontalHeader().setDefaultAlignment(
        Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    )
    t.setWordWrap(False)
    t.setTextElideMode(elide)
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


class SideColumn(QScrollArea):
    """A column of controls that scrolls vertically: as wide as its contents need (at least
    ``width`` px, room for the scroll bar included), never forcing the window taller."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self._width = int(width)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)

    def _w(self) -> int:
        inner = self.widget()
        need = inner.minimumSizeHint().width() if inner is not None else 0
        bar = self.verticalScrollBar().sizeHint().width()
        return max(self._width, need + bar + 2)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(self._w(), 200)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(self._w(), 80)


def scroll_column(width: int) -> tuple[QScrollArea, QVBoxLayout]:
    """A side column at least ``width`` px wide that scrolls vertically (it never forces the
    window taller): (the scroll area to add to a layout, the column's layout to fill)."""
    inner = QWidget()
    v = QVBoxLayout(inner)
    v.setContentsMargins(0, 0, 6, 0)
    area = SideColumn(width)
    area.setWidget(inner)
    return area, v


def enable_items(combo: QComboBox, allowed: Callable[[object], bool], why: str = "") -> None:
    """Enable the items of ``combo`` whose data ``allowed`` accepts; the others are greyed
    out (not selectable) with ``why`` as their tooltip."""
    model = combo.model()
    for i in range(combo.count()):
        item = model.item(i)  # type: ignore[attr-defined]
        ok = bool(allowed(combo.itemData(i)))
        item.setEnabled(ok)
        item.setToolTip("" if ok else why)
