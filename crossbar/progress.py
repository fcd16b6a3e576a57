"""The one progress protocol of every long operation (map reads, sweeps, programming, MVM
batches, calibration batches, Bayesian optimisation, deployment).

A long operation takes ``progress: ProgressFn | None`` and calls it with a :class:`Progress`
after each step. Consumers (the CLI's progress line, the GUI's status bar) read the fields they
need; nothing tells call forms apart by counting arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["Progress", "ProgressFn", "notify", "relabelled"]


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` steps of ``stage``.

    :param done: steps completed (0 … total).
    :param total: steps in all (≥ 1; 0 when unknown).
    :param stage: what is running, e.g. ``"read map"``, ``"program"``, ``"MVM layer 1/2"``,
        ``"BO"`` (empty: the operation's only stage).
    :param detail: one line for a log or a status bar (e.g. ``"p1 = 0.31, p2 = 0.12"``).
    :param values: named figures of the step (e.g. ``{"score": 0.91}``), for plots.
    """

    done: int
    total: int
    stage: str = ""
    detail: str = ""
    values: Mapping[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """done / total in [0, 1] (0 when the total is unknown)."""
        return min(1.0, max(0.0, self.done / self.total)) if self.total > 0 else 0.0

    def text(self) -> str:
        """``"stage: done/total (detail)"`` for a status line."""
        head = f"{self.stage}: " if self.stage else ""
        tail = f" ({self.detail})" if self.detail else ""
        return f"{head}{self.done}/{self.total}{tail}"


ProgressFn = Callable[[Progress], None]


def notify(
    progress: ProgressFn | None,
    done: int,
    total: int,
    stage: str = "",
    detail: str = "",
    **values: float,
) -> None:
    """Call ``progress`` (if given) with a :class:`Progress` built from the arguments."""
    if progress is not None:
        progress(Progress(int(done), int(total), stage, detail, dict(values)))


def relabelled(progress: ProgressFn | None, stage: str) -> ProgressFn | None:
    """A ProgressFn that relabels each report with ``stage`` (for a sub-operation whose
    reports belong to a larger one), or None when ``progress`` is None."""
    if progress is None:
        return None

    def relabel(p: Progress) -> None:
        progress(Progress(p.done, p.total, stage, p.detail, p.values))

    return relabel
