"""Plot styling shared by the panels (pyqtgraph on a light background)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

#: Qualitative palette (matplotlib tab10) for cycles, classes and series.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

_configured = False


def configure() -> None:
    """Light background, dark axes, antialiasing (once per process)."""
    global _configured
    if _configured:
        return
    pg.setConfigOptions(background="w", foreground="k", antialias=True)
    _configured = True


def colour(i: int) -> str:
    """The i-th palette colour (cycles through)."""
    return PALETTE[int(i) % len(PALETTE)]


class SIAxis(pg.AxisItem):
    """Axis whose log-mode ticks read ``10 µA``, ``100 µA`` … instead of bare powers of ten.

    In linear mode it behaves like a plain AxisItem (use ``setLabel(units=…)`` for SI prefixes).
    """

    def __init__(self, orientation: str, unit: str = "", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.unit = unit

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 - pyqtgraph API
        """Log mode over less than a decade: "nice" linear values (95, 100, 105 nS …) instead
        of one or no tick."""
        self._nice = bool(self.logMode) and 0 < maxVal - minVal < 0.8
        if not self._nice:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = 10.0**minVal, 10.0**maxVal
        raw = (hi - lo) / 4.0
        mag = 10.0 ** math.floor(math.log10(raw))
        step = min((m * mag for m in (1, 2, 2.5, 5, 10)), key=lambda s: abs(s - raw))
        first = math.ceil(lo / step) * step
        ticks = [first + k * step for k in range(int((hi - first) / step) + 1)]
        return [(None, [math.log10(t) for t in ticks if t > 0])]

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph API
        xs = [10 ** float(v) * float(scale) for v in values]
        if self.unit:
            labels = [pg.siFormat(x, precision=3, suffix=self.unit, space=True) for x in xs]
        else:  # a plain number: 0.001, 0.01 … (no "1 m" for a ratio)
            labels = [f"{x:.3g}" for x in xs]
        if getattr(self, "_nice", False) or (spacing is not None and spacing >= 1):
            return labels  # decades, or the nice values of a narrow range: all labelled
        # minor ticks (1…9 × 10ⁿ): label the 1-2-5 ones, or all when fewer than 3 would show
        keep = []
        for x in xs:
            mant = x / 10 ** math.floor(math.log10(x) + 1e-9) if x > 0 else 0
            keep.append(round(mant) in (1, 2, 5))
        if sum(keep) < 3:
            return labels
        return [lab if k else "" for lab, k in zip(labels, keep)]


def markers(brush, size: int, symbol: str = "o", line_width: float | None = None) -> dict:
    """``PlotItem.plot`` keyword arguments: ``symbol`` markers of ``size`` px filled with
    ``brush`` (no outline), joined by a line of that colour ``line_width`` px wide (None: no
    line)."""
    return {
        "pen": None if line_width is None else pg.mkPen(brush, width=line_width),
        "symbol": symbol,
        "symbolSize": size,
        "symbolBrush": brush,
        "symbolPen": None,
    }


def grid(plot_item, alpha: float = 0.25) -> None:
    """Major and minor grid lines only (the finest level costs most of a repaint)."""
    plot_item.showGrid(x=True, y=True, alpha=alpha)
    for a in ("left", "bottom"):
        plot_item.getAxis(a).setStyle(maxTickLevel=1)


def set_log_y(plot_item, on: bool, label: str, unit: str) -> None:
    """Switch the left axis between linear (``label (unit)`` with SI prefix) and log mode
    (tick labels carry the unit)."""
    plot_item.setLogMode(x=False, y=bool(on))
    plot_item.getAxis("left").enableAutoSIPrefix(not on)
    if on:
        plot_item.setLabel("left", f"{label}, log scale")
    else:
        plot_item.setLabel("left", label, units=unit)


def no_si_prefix(plot_item, *axes: str) -> None:
    """Plain numbers on unitless axes (no ``(x0.001)`` scaling)."""
    for a in axes or ("left", "bottom"):
        plot_item.getAxis(a).enableAutoSIPrefix(False)


def set_title(plot_item, text: str, size: str = "10pt") -> None:
    """Set a plot's title without letting it force the plot wider: a long title is clipped
    at narrow window sizes instead of pushing the plot (and its neighbours) off screen."""
    plot_item.setTitle(text, size=size)
    relax_title(plot_item)


def relax_title(plot_item) -> None:
    """Let a plot's title be clipped rather than set the plot's minimum width (pyqtgraph
    recomputes a label's minimum whenever its text or geometry changes, so the label's
    ``updateMin`` is replaced by one that keeps the minimum width at 0)."""
    label = plot_item.titleLabel
    original = type(label).updateMin

    def update_min() -> None:
        original(label)
        label.setMinimumWidth(0)
        hints = getattr(label, "_sizeHint", None)
        if isinstance(hints, dict):
            key = next((k for k in hints if getattr(k, "name", "") == "MinimumSize"), None)
            if key is not None:
                hints[key] = (0, hints[key][1])
        label.updateGeometry()

    label.updateMin = update_min
    label.setFlag(label.GraphicsItemFlag.ItemClipsChildrenToShape, True)  # no overdrawing
    update_min()


def log_axes(plot_item, x: bool, y: bool) -> None:
    """Log scale on the x and/or y axis; log axes carry the unit in their tick labels (an
    :class:`SIAxis`) instead of an SI-prefix scaling of the label."""
    plot_item.setLogMode(x=bool(x), y=bool(y))
    for side, on in (("bottom", x), ("left", y)):
        if on:
            axis = plot_item.getAxis(side)
            axis.enableAutoSIPrefix(False)
            text = axis.labelText
            if text:
                axis.setLabel(text)  # no "(unit)": the ticks say it


def plot_widget(
    title: str = "",
    *,
    x: str = "",
    y: str = "",
    x_units: str = "",
    y_units: str = "",
):
    """A PlotWidget with a grid, axis labels and a readable title; both axes are
    :class:`SIAxis` (``x_units``, ``y_units``), so log scales label their ticks with units."""
    configure()
    w = pg.PlotWidget(
        axisItems={"left": SIAxis("left", y_units), "bottom": SIAxis("bottom", x_units)}
    )
    p = w.getPlotItem()
    if title:
        set_title(p, title, size="11pt")
    if x:
        p.setLabel("bottom", x, units=x_units or None)
    if y:
        p.setLabel("left", y, units=y_units or None)
    grid(p)
    return w


def log_ticks(lo: float, hi: float, unit: str) -> list[tuple[float, str]]:
    """Ticks for a log10 colour scale from ``lo`` to ``hi`` (log10 values): the 1-2-5 values
    inside the range, labelled with SI prefixes (``20 kΩ``); at least the two ends."""
    ticks = []
    for e in range(math.floor(lo) - 1, math.ceil(hi) + 1):
        for m in (1, 2, 5):
            v = math.log10(m) + e
            if lo - 1e-9 <= v <= hi + 1e-9:
                ticks.append((v, pg.siFormat(10**v, precision=3, suffix=unit, space=True)))
    if len(ticks) < 2:
        ticks = [(v, pg.siFormat(10**v, precision=3, suffix=unit, space=True)) for v in (lo, hi)]
    return ticks


def si(value: float, unit: str, digits: int = 3) -> str:
    """``12.3 kΩ`` style formatting; ``—`` for NaN."""
    if value is None or not np.isfinite(value):
        return "—"
    return pg.siFormat(float(value), precision=digits, suffix=unit, space=True)


def fmt(value: float, digits: int = 4) -> str:
    """Plain number with ``digits`` significant digits; ``—`` for NaN/None."""
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "—"
    return f"{v:.{digits}g}"


def data_menu(widget, actions) -> list:
    """Replace the plot's right-click "Export..." (pyqtgraph's exporters write the plotted,
    possibly |I|-transformed data with a fixed precision) by ``actions``: ``(text, slot)``
    pairs, the panel's own exports. Returns the QActions."""
    from PyQt6.QtGui import QAction

    scene = widget.scene()
    acts = []
    for text, slot in actions:
        a = QAction(text, scene)
        a.triggered.connect(slot)
        acts.append(a)
    scene.contextMenu = acts
    return acts
