"""Delivery windows: the days and hours (in a caller's own time zone) when a non-urgent message may be sent.

``delivery_window: {days, from, to, timezone}`` on a caller or a template (docs/configuration.md). A send
under a window goes upstream with Infobip's ``deliveryTimeWindow`` (days and hours in UTC, at least an hour)
when the window can be written that way at the current UTC offset: the upstream then holds the message until
the window opens. A window it cannot express (shorter than an hour, or crossing midnight once turned into
UTC) is kept by the bridge instead: the message waits in the durable queue until the window opens.
A request's own ``deliveryTimeWindow`` is left as the caller wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)\Z")
_KEYS = ("days", "from", "to", "timezone")


@dataclass(frozen=True)
class DeliveryWindow:
    """Open on ``days`` (0 = Monday) from ``start`` to ``end`` (minutes after local midnight, start < end)."""

    days: frozenset[int]
    start: int
    end: int
    zone: str = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def is_open(self, t: float) -> bool:
        local = datetime.fromtimestamp(t, self.tz)
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minute < self.end

    def next_open(self, t: float) -> float:
        """``t`` when the window is open then, else when it next opens (epoch seconds)."""
        if self.is_open(t):
            return t
        tz = self.tz
        day = datetime.fromtimestamp(t, tz).date()
        for i in range(8):
            d = day + timedelta(days=i)
            if d.weekday() not in self.days:
                continue
            opens = datetime(d.year, d.month, d.day, self.start // 60, self.start % 60, tzinfo=tz).timestamp()
            if opens > t:
                return opens
        return t  # unreachable with at least one day

    def upstream(self, t: float) -> dict[str, Any] | None:
        """Infobip's ``deliveryTimeWindow`` (UTC) for this window at the UTC offset of ``t``; None when it
        cannot be written that way (under an hour, or crossing midnight in UTC): the bridge holds it."""
        offset = datetime.fromtimestamp(t, self.tz).utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        start, end = self.start - minutes, self.end - minutes
        shift = start // 1440
        start, end = start - shift * 1440, end - shift * 1440
        if end > 1439 or end - start < 60:
            return None
        return {"days": [DAYS[(d + shift) % 7] for d in sorted(self.days, key=lambda d: (d + shift) % 7)],
                "from": {"hour": start // 60, "minute": start % 60},
                "to": {"hour": end // 60, "minute": end % 60}}


def _day(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    name = value.strip().upper()
    for i, day in enumerate(DAYS):
        if name == day or (len(name) >= 3 and day.startswith(name)):
            return i
    return None


def _minutes(value: Any) -> int | None:
    m = _TIME.match(value.strip()) if isinstance(value, str) else None
    return None if m is None else int(m.group(1)) * 60 + int(m.group(2))


def parse_window(d: Any) -> tuple[DeliveryWindow | None, list[tuple[str, str]]]:
    """A window from its config mapping; problems as (key below delivery_window, sentence)."""
    if not isinstance(d, dict):
        return None, [("", "must be a mapping {days, from, to, timezone}")]
    problems = [(str(k), f"unknown key; known: {', '.join(_KEYS)}") for k in d if k not in _KEYS]
    raw_days = d.get("days", list(DAYS))
    days: set[int] = set()
    if isinstance(raw_days, str):
        raw_days = [raw_days]
    if not isinstance(raw_days, list) or not raw_days:
        problems.append(("days", "must be a list of week days (MONDAY … SUNDAY, or MON … SUN)"))
    else:
        for i, v in enumerate(raw_days):
            day = _day(v)
            if day is None:
                problems.append((f"days[{i}]", f"{v!r} is not a week day (MONDAY … SUNDAY, or MON … SUN)"))
            else:
                days.add(day)
    start, end = _minutes(d.get("from")), _minutes(d.get("to"))
    for key, value in (("from", start), ("to", end)):
        if value is None:
            problems.append((key, f"must be a time HH:MM (local, in timezone), got {d.get(key)!r}"))
    if start is not None and end is not None and start >= end:
        problems.append(("to", "must be later than from (a window that crosses midnight: two templates, or "
                               "widen it)"))
    zone = d.get("timezone", "UTC")
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(("timezone", f"{zone!r} is not a known time zone (IANA names, e.g. Europe/Zurich)"))
    if problems or start is None or end is None:
        return None, problems
    return DeliveryWindow(frozenset(days), start, end, str(zone)), []

