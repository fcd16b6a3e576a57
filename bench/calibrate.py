"""``xbar bench calibrate``: calibrating the 30 shared devices, against a naive implementation.

Case ``calibrate-shared-30``: the 30 Keithley exports of ``../shared/data/perovskite_iv`` (or
``--data DIR``). The files are read once with :func:`calibration.io.read_iv` (timed on its own);
then METHODS section 1 is computed for every device by our vectorised code
(:func:`calibration.batch.calibrate_arrays`) and by the peer, :func:`naive_usability` below — a
straightforward pure-Python transcription (lists, loops and ``math`` only, including its own χ²
quantile via the regularised incomplete gamma function and bisection). Both get the same data
(the peer as nested lists, converted before timing), so the compute rows compare computation only;
the end-to-end row adds the same measured read time to both. Each compute timing is the best of
5 repetitions. The bench asserts that both give the same usability to 1e-9 for every device.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from bench._report import Row

DESCRIPTION = "calibrate the 30 shared I-V files: vectorised vs naive pure-Python section 1"

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "perovskite_iv"
REPEATS = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder of the .xlsx files")


# --------------------------------------------------------------------------------------------
# the peer: METHODS section 1 in plain Python


def _gamma_p(a: float, x: float) -> float:
    """Regularised lower incomplete gamma P(a, x) (series / continued fraction)."""
    if x <= 0:
        return 0.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = 1.0 / a
        total = term
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return total * math.exp(log_front)
    # Lentz's continued fraction for Q(a, x)
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-17:
            break
    return 1.0 - math.exp(log_front) * h


def chi2_ppf_naive(q: float, df: int) -> float:
    """χ² quantile by bisection on the CDF P(df/2, x/2)."""
    lo, hi = 0.0, float(df) + 20.0 * math.sqrt(2.0 * df) + 50.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _gamma_p(df / 2.0, mid / 2.0) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return 0.5 * (lo + hi)


def naive_usability(
    voltage: list[float],
    rows: list[list[float]],
    tolerated_decreases: int = 0,
    l_min_fraction: float = 0.35,
) -> float:
    """U = α_nm · exp(−σ_up) of METHODS section 1, written with lists and loops only."""
    n_cols = len(rows[0])
    keep_cols = [c for c in range(n_cols) if any(not math.isnan(r[c]) for r in rows)]
    # SET branch: 0 … first argmax of V, V ≥ 1 mV
    k_top, v_max = 0, -math.inf
    for k, v in enumerate(voltage):
        if not math.isnan(v) and v > v_max:
            k_top, v_max = k, v
    branch_g: list[list[float]] = []
    g_mean: list[float] = []
    for k in range(k_top + 1):
        v = voltage[k]
        if math.isnan(v) or v < 1e-3:
            continue
        gs = []
        for c in keep_cols:
            g = rows[k][c] / v
            gs.append(g if (math.isfinite(g) and g > 0) else math.nan)
        valid = [g for g in gs if not math.isnan(g)]
        if valid:
            total = 0.0
            for g in valid:
                total += g
            branch_g.append(gs)
            g_mean.append(total / len(valid))
    n = len(g_mean)
    # LCIS: every start, extend while the non-rises stay within the tolerance
    best_start, best_len = 0, 1
    for s in range(n):
        bad = 0
        e = s
        while e + 1 < n:
            if not g_mean[e + 1] > g_mean[e]:
                if bad == tolerated_decreases:
                    break
                bad += 1
            e += 1
        if e - s + 1 > best_len:
            best_start, best_len = s, e - s + 1
    l_min = max(1, math.ceil(l_min_fraction * n))
    alpha = min(1.0, best_len / l_min)
    res = []
    for k in range(best_start, best_start + best_len):
        for g in branch_g[k]:
            if not math.isnan(g):
                res.append(math.log(g / g_mean[k]))
    big_n = len(res)
    if big_n < 2:
        return 0.0
    mean = sum(res) / big_n
    sigma_hat = math.sqrt(sum((r - mean) ** 2 for r in res) / big_n)
    sigma_up = sigma_hat * math.sqrt(big_n / chi2_ppf_naive(0.05, big_n - 1))
    return min(1.0, max(0.0, alpha * math.exp(-sigma_up)))


# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> list[Row]:
    from calibration.batch import calibrate_arrays
    from calibration.io import read_iv

    data = Path(getattr(args, "data", DEFAULT_DATA))
    files = sorted(data.glob("*.xlsx"))
    if not files:
        raise SystemExit(f"bench calibrate: no .xlsx files in {data}")

    t0 = time.perf_counter()
    ivs = [read_iv(f) for f in files]
    t_read = time.perf_counter() - t0
    as_lists = [(iv.voltage.tolist(), iv.currents.tolist()) for iv in ivs]

    def ours() -> list[float]:
        return [calibrate_arrays(iv.name, iv.voltage, iv.currents).result.usability for iv in ivs]

    def peer() -> list[float]:
        return [naive_usability(v, rows) for v, rows in as_lists]

    t_ours, u_ours = _best_of(ours)
    t_peer, u_peer = _best_of(peer)
    worst = max(abs(a - b) for a, b in zip(u_ours, u_peer))
    assert worst <= 1e-9, f"usabilities differ by {worst:.3g} between ours and the naive peer"

    case = f"calibrate-shared-{len(files)}"
    return [
        Row(
            case,
            f"section 1 compute, {len(files)} devices (best of {REPEATS})",
            t_ours,
            "s",
            "naive pure Python",
            t_peer,
            t_peer / t_ours,
        ),
        Row(
            case,
            "read + compute (read time shared)",
            t_read + t_ours,
            "s",
            "naive pure Python",
            t_read + t_peer,
            (t_read + t_peer) / (t_read + t_ours),
        ),
        Row(case, f"read {len(files)} xlsx files (openpyxl)", t_read, "s"),
        Row(case, "max |U_ours - U_peer|", worst, "", None, None, None),
        Row(case, "usability best / worst device", max(u_ours), "", "worst", min(u_ours)),
    ]


def _best_of(fn) -> tuple[float, list[float]]:
    best, out = math.inf, []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
