"""An injectable clock, so simulated instruments can report how long a run would take."""

from __future__ import annotations

import time


class VirtualClock:
    """A clock that only moves when told to (seconds since construction).

    Simulated instruments charge bus latency and integration time to it; ``sleep`` advances it
    instead of blocking, so a simulated 10-minute sweep runs in milliseconds and still reports 10
    minutes.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)

    def now(self) -> float:
        """Current virtual time, s."""
        return self._t

    def advance(self, dt: float) -> None:
        """Move the clock forward by ``dt`` seconds (≥ 0)."""
        if dt < 0:
            raise ValueError(f"a clock cannot go backwards (dt = {dt} s)")
        self._t += float(dt)

    sleep = advance


class WallClock:
    """The real clock with the same interface (``now`` in s, ``sleep`` blocks)."""

    def now(self) -> float:
        return time.monotonic()

    def advance(self, dt: float) -> None:
        time.sleep(max(0.0, dt))

    sleep = advance
