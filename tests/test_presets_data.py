"""The presets are grounded in the shared devices' read-voltage statistics (docs/presets.md).

Each preset's simulated cyclic sweeps (the protocol the presets are defined by: 32 isolated
devices, 10 cycles 0 → +6 → 0 → −6 → 0 V, 0.1 V steps, 25 µA, 50 ms per point, seed 0) give
read statistics at 0.2 V (:mod:`calibration.readstats`); the shared devices whose usability is
within ±0.15 of the preset's target give the real range. The read spreads (σ of ln G of the
HRS and the LRS) of every preset must lie inside that range; for ``paper`` the on/off ratio and
the SET and RESET voltages too (its read regime and programming behaviour).

``python tests/test_presets_data.py`` prints the table of docs/presets.md.
"""

from __future__ import annotations

import math
import re
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from calibration.io import find_iv_files, read_iv_all
from calibration.readstats import read_stats
from calibration.usability import usability
from sim_backends.iv import measured_reset_voltage, measured_set_voltage, simulate_cyclic_iv_many
from sim_backends.profiles import PROFILES

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "presets.md"
SHARED = REPO.parent / "shared" / "data" / "perovskite_iv"
BAND = 0.15  # shared devices of "similar usability": |U - target| <= BAND
N_DEVICES, CYCLES, SEED, V_READ = 32, 10, 0, 0.2
#: (key, column title, format) of the compared statistics
STATS = (
    ("sigma_hrs", "σ ln G, HRS", ".3f"),
    ("sigma_lrs", "σ ln G, LRS", ".3f"),
    ("on_off", "on/off", ".3g"),
    ("drift_hrs", "HRS drift /cycle", "+.3f"),
    ("v_set", "V_set (V)", ".2f"),
    ("v_reset", "V_reset (V)", ".2f"),
)
#: what each preset must have inside the real range
CHECKED = {
    "optimized": ("sigma_hrs", "sigma_lrs"),
    "typical": ("sigma_hrs", "sigma_lrs"),
    "poor": ("sigma_hrs", "sigma_lrs"),
    "paper": ("sigma_hrs", "sigma_lrs", "on_off", "v_set", "v_reset"),
}


def _stats(v: np.ndarray, i: np.ndarray) -> dict[str, float]:
    rs = read_stats(v, i, V_READ)
    return {
        "u": usability(v, i).usability,
        "sigma_hrs": rs.branch("hrs_pos").sigma_ln_g,
        "sigma_lrs": rs.branch("lrs_pos").sigma_ln_g,
        "on_off": rs.on_off_ratio,
        "drift_hrs": rs.branch("hrs_pos").drift_per_cycle,
        "v_set": measured_set_voltage(v, i),
        "v_reset": measured_reset_voltage(v, i),
    }


@cache
def simulated(preset: str) -> dict[str, float]:
    """U (mean) and the median of every statistic over the preset's simulated devices."""
    v, i = simulate_cyclic_iv_many(preset, N_DEVICES, cycles=CYCLES, seed=SEED)
    per = [_stats(v, i[d]) for d in range(N_DEVICES)]
    out = {k: float(np.nanmedian([p[k] for p in per])) for k, _, _ in STATS}
    out["u"] = float(np.mean([p["u"] for p in per]))
    return out


@cache
def shared_devices(folder: str = str(SHARED)) -> tuple[dict[str, float], ...]:
    """The statistics of every shared device (read from the Excel exports)."""
    out = []
    for path in find_iv_files([folder]):
        for iv in read_iv_all(path, min_cycles=0):
            keep = np.isfinite(iv.currents).any(axis=0)
            out.append(_stats(iv.voltage, iv.currents[:, keep]))
    return tuple(out)


def real_range(target: float, devices=None) -> dict[str, tuple[float, float, int]]:
    """(min, max, n) of every statistic over the shared devices with |U − target| ≤ BAND."""
    band = [d for d in (devices or shared_devices()) if abs(d["u"] - target) <= BAND]
    out = {}
    for key, _, _ in STATS:
        vals = [d[key] for d in band if math.isfinite(d[key])]
        out[key] = (min(vals), max(vals), len(vals)) if vals else (math.nan, math.nan, 0)
    out["u"] = (min(d["u"] for d in band), max(d["u"] for d in band), len(band))
    return out


def inside(value: float, span: tuple[float, float, int]) -> bool:
    return math.isfinite(value) and span[0] <= value <= span[1]


def table(devices=None) -> str:
    """The markdown table of docs/presets.md."""
    head = ["preset", "U target / sim.", "shared devices (U range)"]
    head += [title for _, title, _ in STATS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, prof in PROFILES.items():
        sim, real = simulated(name), real_range(prof.target_usability, devices)
        row = [
            f"`{name}`",
            f"{prof.target_usability:.2f} / {sim['u']:.3f}",
            f"{real['u'][2]} ({real['u'][0]:.2f}–{real['u'][1]:.2f})",
        ]
        for key, _, fmt in STATS:
            lo, hi, _ = real[key]
            mark = "✓" if inside(sim[key], real[key]) else "✗"
            if key in CHECKED[name]:
                mark = f"**{mark}**"
            row.append(f"{format(sim[key], fmt)} {mark} [{format(lo, fmt)}, {format(hi, fmt)}]")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _doc_table() -> str:
    """The first table of docs/presets.md (its consecutive ``|`` lines)."""
    rows: list[str] = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(PROFILES))
def test_preset_read_spreads_lie_inside_the_documented_real_range(preset: str) -> None:
    """Quick: the simulation against the real ranges written in docs/presets.md (which the slow
    test below recomputes from the shared files)."""
    sim = simulated(preset)
    doc = {line.split("|")[1].strip(): line for line in _doc_table().splitlines()[2:]}
    cells = [c.strip() for c in doc[f"`{preset}`"].split("|")[1:-1]]
    assert cells[1].split("/")[1].strip() == f"{sim['u']:.3f}"
    for (key, _, fmt), cell in zip(STATS, cells[3:]):
        value, lo, hi = re.fullmatch(r"(\S+) \S+ \[(\S+), (\S+)\]", cell).groups()
        assert value == format(sim[key], fmt), (preset, key)  # the doc shows this simulation
        if key in CHECKED[preset]:
            assert float(lo) <= sim[key] <= float(hi), (preset, key, sim[key], lo, hi)
    assert abs(sim["u"] - PROFILES[preset].target_usability) <= 0.05


@pytest.mark.slow
def test_docs_table_is_the_shared_data_beside_the_simulation(shared_iv_dir: Path) -> None:
    devices = shared_devices(str(shared_iv_dir))
    assert len(devices) == 30
    assert _doc_table() == table(devices)
    for name, prof in PROFILES.items():
        real = real_range(prof.target_usability, devices)
        for key in CHECKED[name]:
            assert inside(simulated(name)[key], real[key]), (name, key)


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
