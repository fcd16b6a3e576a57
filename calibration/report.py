"""Calibration reports: one PNG per device (METHODS section 1 figures) and a summary CSV.

The PNG of a device shows the I-V loops (linear and log |I|, one colour per cycle), the mean
conductance ``Ḡ`` on the SET branch with the LCIS highlighted and the ``L_min`` window marked,
the histogram of the log residuals ``r`` with the fitted normal, and the numbers
``L, L_min, α_nm, σ̂, σ_up, N, U``. Figures are drawn with matplotlib's Agg canvas directly (no
pyplot, no global backend switch), so reports can be written from any thread or process.
"""

from __future__ import annotations

import csv
import math
import re
import textwrap
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from calibration.batch import JSON_KEYS, DeviceCalibration

SUMMARY_CSV = "calibration_summary.csv"


def safe_stem(name: str) -> str:
    """A file-name stem for a device name (extension dropped, unsafe characters → ``_``)."""
    base, _, group = name.partition(":")
    stem = Path(base).stem + (("_" + group.strip("/")) if group else "")
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", stem) or "device"


def write_report(
    devices: Sequence[DeviceCalibration], out_dir: str | Path, *, jobs: int = 1
) -> list[Path]:
    """Write ``<stem>.png`` per device and the summary CSV into ``out_dir`` (created).

    Args:
        devices: calibrated devices.
        out_dir: output directory.
        jobs: worker processes for the PNGs (about 1 s each); 1 (default) draws them in this
            process.

    Returns:
        The paths written, the summary CSV last.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = []
    used: set[str] = set()
    for dev in devices:
        stem = safe_stem(dev.name)
        k = 2
        while stem in used:  # two devices with the same stem: keep both
            stem = f"{safe_stem(dev.name)}_{k}"
            k += 1
        used.add(stem)
        targets.append(out / f"{stem}.png")
    if jobs > 1 and len(devices) > 2:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            paths = list(pool.map(write_device_png, devices, targets))
    else:
        paths = [write_device_png(dev, t) for dev, t in zip(devices, targets)]
    paths.append(write_summary_csv(devices, out / SUMMARY_CSV))
    return paths


def write_summary_csv(devices: Sequence[DeviceCalibration], path: str | Path) -> Path:
    """One row per device under :data:`calibration.batch.JSON_KEYS`, by descending usability.

    Numbers are written with ``repr`` (round-trip exact), missing values as empty cells.
    """
    path = Path(path)
    rows = sorted(devices, key=lambda d: -d.result.usability)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(JSON_KEYS)
        for dev in rows:
            d = dev.to_json_dict()
            w.writerow(
                [
                    "" if d[k] is None else repr(d[k]) if isinstance(d[k], float) else d[k]
                    for k in JSON_KEYS
                ]
            )
    return path


def write_device_png(dev: DeviceCalibration, path: str | Path, *, dpi: int = 110) -> Path:
    """Draw the section-1 figures of one device into a PNG; returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    r = dev.result
    fig = Figure(figsize=(13.5, 8.6), layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(2, 3, width_ratios=[1, 1, 0.72])
    ax_lin = fig.add_subplot(gs[0, 0])
    ax_log = fig.add_subplot(gs[0, 1])
    ax_txt = fig.add_subplot(gs[0, 2])
    ax_g = fig.add_subplot(gs[1, 0:2])
    ax_hist = fig.add_subplot(gs[1, 2])
    fig.suptitle("\n".join(_wrap_name(dev.name, 120)), fontsize=9)

    _plot_loops(fig, ax_lin, ax_log, dev)
    _plot_mean_curve(ax_g, dev)
    _plot_residuals(ax_hist, r)
    _plot_numbers(ax_txt, dev)
    fig.savefig(path, dpi=dpi)
    return path


# --------------------------------------------------------------------------------------------


def _plot_loops(fig, ax_lin, ax_log, dev: DeviceCalibration) -> None:
    from matplotlib import cm, colors

    v = dev.voltage
    has = np.isfinite(dev.currents).any(axis=0)
    cycles = [c for c, h in zip(dev.cycle_numbers, has) if h]
    cur = dev.currents[:, has]
    norm = colors.Normalize(vmin=min(cycles), vmax=max(max(cycles), min(cycles) + 1))
    cmap = _cmap("viridis")
    peak = float(np.nanmax(np.abs(cur))) if np.isfinite(cur).any() else 1.0
    scale, unit = _current_unit(peak)
    for c, col in zip(cycles, cur.T):
        ok = np.isfinite(col) & np.isfinite(v)
        ax_lin.plot(v[ok], col[ok] / scale, lw=0.8, color=cmap(norm(c)))
        mag = np.abs(col)
        ok &= mag > 0
        ax_log.plot(v[ok], mag[ok], lw=0.8, color=cmap(norm(c)))
    ax_lin.set_xlabel("V (V)")
    ax_lin.set_ylabel(f"I ({unit})")
    ax_lin.set_title("I-V loops (linear)", fontsize=10)
    ax_lin.axhline(0, color="0.7", lw=0.5)
    ax_lin.axvline(0, color="0.7", lw=0.5)
    ax_log.set_yscale("log")
    ax_log.set_xlabel("V (V)")
    ax_log.set_ylabel("|I| (A)")
    ax_log.set_title("I-V loops (log |I|)", fontsize=10)
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, ax=[ax_lin, ax_log], location="right", shrink=0.9, pad=0.01)
    cb.set_label(f"cycle ({len(cycles)} with data)")
    from matplotlib.ticker import MaxNLocator

    cb.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax_lin, ax_log):
        ax.grid(True, alpha=0.3)


def _wrap_name(name: str, width: int) -> list[str]:
    """Wrap a long file name after underscores (or spaces) rather than mid-word."""
    lines, line = [], ""
    for token in re.split(r"(?<=[_ ])", name):
        if line and len(line) + len(token) > width:
            lines.append(line)
            line = ""
        line += token
    lines.append(line)
    return [piece for ln in lines for piece in (textwrap.wrap(ln, width) or [ln])]


def _current_unit(peak: float) -> tuple[float, str]:
    """(scale, unit) so that ``peak / scale`` lies in [1, 1000) where possible."""
    for scale, unit in ((1.0, "A"), (1e-3, "mA"), (1e-6, "µA"), (1e-9, "nA")):
        if peak >= scale:
            return scale, unit
    return 1e-12, "pA"


def _cmap(name: str):
    import matplotlib

    return matplotlib.colormaps[name]


def _plot_mean_curve(ax, dev: DeviceCalibration) -> None:
    r = dev.result
    bv = np.asarray(r.branch_v)
    bg = np.asarray(r.branch_g_mean)
    s, L, n = r.lcis_start, r.lcis_length, len(bv)

    # per-cycle conductances on the branch, faint, for context
    v = dev.voltage
    finite_v = np.where(np.isfinite(v), v, -np.inf)
    k_top = int(np.argmax(finite_v))
    idx = np.arange(k_top + 1)
    idx = idx[np.isfinite(v[idx]) & (v[idx] >= 1e-3)]
    with np.errstate(divide="ignore", invalid="ignore"):
        g = dev.currents[idx] / v[idx, None]
    g = np.where(np.isfinite(g) & (g > 0), g, np.nan)
    for col in g.T:
        ax.plot(v[idx], col, ".", ms=2, color="0.75", zorder=1)
    ax.plot([], [], ".", ms=4, color="0.75", label="G per cycle")

    ax.plot(bv, bg, "-o", ms=3, lw=1, color="tab:blue", label="Ḡ (mean over cycles)", zorder=3)
    seg = slice(s, s + L)
    ax.plot(
        bv[seg],
        bg[seg],
        "-o",
        ms=5,
        lw=2.5,
        color="tab:red",
        zorder=4,
        label=f"LCIS: L = {L} points, {bv[s]:.3g} → {bv[s + L - 1]:.3g} V",
    )
    ax.axvspan(bv[s], bv[s + L - 1], color="tab:red", alpha=0.08, zorder=0)

    # L_min window: the points the LCIS would need from its start, drawn under the data
    end = min(s + r.l_min - 1, n - 1)
    short = s + r.l_min - 1 > n - 1
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.annotate(
        "",
        xy=(bv[end], 0.04),
        xytext=(bv[s], 0.04),
        xycoords=trans,
        textcoords=trans,
        arrowprops={"arrowstyle": "|-|", "color": "tab:purple", "lw": 1.5},
        zorder=5,
    )
    text = f"L_min = {r.l_min} points" + (" (clipped at the branch end)" if short else "")
    ax.text(
        (bv[s] + bv[end]) / 2,
        0.06,
        text,
        transform=trans,
        ha="center",
        va="bottom",
        fontsize=8,
        color="tab:purple",
        bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1},
        zorder=6,
    )
    ax.axvline(
        bv[end],
        color="tab:purple",
        ls="--",
        lw=1,
        zorder=2,
        label="end of the L_min window from the LCIS start",
    )
    verdict = "L ≥ L_min: monotonic" if L >= r.l_min else f"L < L_min: α_nm = {r.alpha_nm:.3f}"
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo / (hi / lo) ** 0.15, hi)  # room under the data for the L_min bracket
    ax.set_xlabel("V (V), SET branch")
    ax.set_ylabel("G = I / V (S)")
    ax.set_title(f"Mean conductance on the SET branch ({n} points); {verdict}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _plot_residuals(ax, r) -> None:
    res = np.asarray(r.residuals)
    if res.size == 0:
        ax.text(0.5, 0.5, "no residuals", ha="center", transform=ax.transAxes)
        return
    bins = int(min(60, max(8, math.ceil(2 * res.size ** (1 / 3)))))
    ax.hist(
        res,
        bins=bins,
        density=True,
        color="tab:blue",
        alpha=0.55,
        edgecolor="white",
        label=f"r = ln(G/Ḡ), N = {res.size}",
    )
    mu = float(res.mean())
    lo, hi = float(res.min()), float(res.max())
    pad = 0.1 * (hi - lo) if hi > lo else 1.0
    x = np.linspace(lo - pad, hi + pad, 300)
    if r.sigma_hat > 0:
        pdf = np.exp(-0.5 * ((x - mu) / r.sigma_hat) ** 2) / (r.sigma_hat * math.sqrt(2 * math.pi))
        ax.plot(x, pdf, color="tab:red", lw=1.8, label=f"normal fit, σ̂ = {r.sigma_hat:.3g}")
    if math.isfinite(r.sigma_up) and r.sigma_up > 0:
        pdf = np.exp(-0.5 * ((x - mu) / r.sigma_up) ** 2) / (r.sigma_up * math.sqrt(2 * math.pi))
        ax.plot(x, pdf, color="tab:orange", lw=1.2, ls="--", label=f"σ_up = {r.sigma_up:.3g}")
    ax.set_xlabel("r (log residual inside the LCIS)")
    ax.set_ylabel("density")
    ax.set_title("Stochastic spread", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.3)


def _plot_numbers(ax, dev: DeviceCalibration) -> None:
    r = dev.result
    o = dev.options
    ax.axis("off")
    sig = "σ_up" if r.sigma_choice == "up" else "σ̂"
    lines = [
        ("U (usability)", f"{r.usability:.4f}"),
        ("", f"= α_nm · exp(−{sig})"),
        ("", f"= {r.alpha_nm:.3f} · exp(−{r.sigma:.3f})"),
        ("L (LCIS length)", f"{r.lcis_length} points"),
        ("L_min", f"{r.l_min} points  (⌈{o.l_min_fraction:g}·{r.branch_points}⌉)"),
        ("α_nm", f"{r.alpha_nm:.4f}"),
        ("σ̂", f"{r.sigma_hat:.4f}"),
        ("σ_up (χ² 95 %)", f"{r.sigma_up:.4f}"),
        ("N (residuals)", f"{r.n_residuals}"),
        ("cycles with data", f"{r.n_cycles}"),
        ("LCIS", f"{r.lcis_start_v:.3g} → {r.lcis_stop_v:.3g} V"),
        ("non-rises allowed", f"{o.tolerated_decreases}"),
    ]
    y = 0.98
    for key, value in lines:
        ax.text(0.0, y, key, transform=ax.transAxes, fontsize=10, va="top", weight="bold")
        ax.text(0.56, y, value, transform=ax.transAxes, fontsize=10, va="top", family="monospace")
        y -= 0.07
    for note in dev.notes:
        ax.text(
            0.0,
            y,
            "\n".join(textwrap.wrap("note: " + note, 48)),
            transform=ax.transAxes,
            fontsize=8,
            va="top",
            color="tab:red",
        )
        y -= 0.12
