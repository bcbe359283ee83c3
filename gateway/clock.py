"""Time sources: the real clock for production, a manual one for tests.

All times are epoch seconds (``float``). Code that schedules work takes a ``Clock`` so tests can step
time explicitly. A separate *time scale* (a float multiplied into every schedule delay, 1.0 in
production, e.g. 0.001 in tests so one minute is 60 ms) lets real-time tests run the retry schedule
quickly; see :func:`scaled`.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the time in epoch seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock (``time.time()``)."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; thread-safe."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (must be >= 0); return the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._t += seconds
            return self._t

    def set(self, t: float) -> None:
        """Jump to the absolute time ``t``."""
        with self._lock:
            self._t = float(t)


def scaled(seconds: float, time_scale: float) -> float:
    """A schedule delay in clock seconds: ``seconds * time_scale`` (time_scale must be > 0)."""
    if time_scale <= 0:
        raise ValueError("time_scale must be > 0")
    return seconds * time_scale
