"""The benchmark output convention shared by every ``xbar bench …`` command.

``--json`` prints a JSON list of rows ``{"case", "metric", "value", "unit", "peer",
"peer_value", "ratio"}`` (peer fields ``None`` where there is none); otherwise a table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One measured figure of a benchmark case, optionally against a named peer."""

    case: str
    metric: str
    value: float
    unit: str
    peer: str | None = None
    peer_value: float | None = None
    ratio: float | None = None


def compare(
    case: str,
    metric: str,
    unit: str,
    key: str,
    ours: dict,
    peer: dict,
    name: str,
    *,
    ratio: bool = True,
) -> Row:
    """The row of ``ours[key]`` against ``peer[key]`` (``ratio`` = peer / ours, or none)."""
    value, other = ours[key], peer[key]
    return Row(case, metric, value, unit, name, other, other / value if ratio else None)


def emit(rows: list[Row], as_json: bool) -> str:
    """Format rows as the JSON list or as a readable table."""
    if as_json:
        return json.dumps([asdict(r) for r in rows], indent=1)
    head = ["case", "metric", "value", "unit", "peer", "peer value", "ratio"]
    body = [
        [
            r.case,
            r.metric,
            _fmt(r.value),
            r.unit,
            r.peer or "-",
            _fmt(r.peer_value),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        return f"{x:.4g}"
    return f"{x:.3e}"
