"""Time sources: the real clock for production, a manual one for tests.

All times are epoch seconds (``float``). Code that schedules work takes a ``Clock`` so tests can step
time explicitly. A separate *time scale* (a float multiplied into every schedule delay, 1.0 in
production, e.g. 0.001 in tests so one minute is 60 ms) lets real-time tests run the retry schedule
quickly; see :func:`scaled`.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from .validate import Errors, format_datetime, parse_datetime


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


# -- Infobip's date-time on the wire <-> epoch seconds ----------------------------------------
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}\Z")


def fmt_time(t: float | None) -> str | None:
    """Epoch seconds as Infobip's ``2019-11-09T16:00:00.000+0000``."""
    return None if t is None else format_datetime(datetime.fromtimestamp(t, UTC))


def parse_time(value: Any) -> float | None:
    """Infobip's date-time (any accepted variant) as epoch seconds; None if absent or unreadable."""
    if isinstance(value, str) and _CANONICAL.match(value):  # what Infobip sends: the fast path
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None  # e.g. February 30th: unreadable either way
    dt = parse_datetime("t", value, Errors())
    return dt.timestamp() if dt else None
