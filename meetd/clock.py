"""Time, passed in: the server uses the system clock, tests a clock they move by hand."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FakeClock:
    """A clock that moves only when told to: ``FakeClock(at_ms)``, then ``advance(seconds)``."""

    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += round(seconds * 1000)

    def set(self, now_ms: int) -> None:
        self._now = now_ms
