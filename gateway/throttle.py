"""Failed logins cost the attacker, not the bridge.

Failures are counted per caller name and per client address. The first ``free_failures`` of either cost
nothing (people mistype); each further failure locks that name or address for a delay that doubles, from
``first_delay`` up to ``max_delay`` seconds. While locked, an attempt is refused at once (429 with
``Retry-After``) without checking the secret: no password hash runs, so guessing burns neither the
bridge's CPU nor its time. A success clears its name's count (not its address's: one known account must
not reset the count of an address that guesses others). Counts are forgotten ``forget_after`` seconds
after their last failure.

State is per process (a dict bounded to ``max_entries``): with several processes each counts its own
failures, so an attacker gets at most that many times the free failures (see docs/security.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .clock import Clock
from .config import ThrottleSettings
from .errors import Throttled


@dataclass
class _Entry:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass
class LoginThrottle:
    settings: ThrottleSettings
    clock: Clock
    failures_total: dict[str, int] = field(default_factory=dict)  # by kind (api, ui), for /metrics
    refused_total: dict[str, int] = field(default_factory=dict)
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def keys(name: str | None, address: str | None) -> list[str]:
        return [k for k in (f"name:{name}" if name else "", f"addr:{address}" if address else "") if k]

    def check(self, keys: list[str], kind: str) -> None:
        """Raise :class:`Throttled` if any of ``keys`` is locked now."""
        now = self.clock.now()
        with self._lock:
            wait = max((e.locked_until - now for k in keys if (e := self._entries.get(k))), default=0.0)
            if wait > 0:
                self.refused_total[kind] = self.refused_total.get(kind, 0) + 1
        if wait > 0:
            raise Throttled(f"Too many failed logins: try again in {int(wait) + 1} s", wait)

    def failed(self, keys: list[str], kind: str) -> None:
        now = self.clock.now()
        s = self.settings
        with self._lock:
            self.failures_total[kind] = self.failures_total.get(kind, 0) + 1
            if len(self._entries) >= s.max_entries:
                self._forget(now)
            for k in keys:
                e = self._entries.get(k)
                if e is None or now - e.last > s.forget_after:
                    e = self._entries[k] = _Entry()
                e.failures += 1
                e.last = now
                over = e.failures - s.free_failures
                if over > 0:
                    e.locked_until = now + min(s.max_delay, s.first_delay * 2 ** min(over - 1, 40))

    def succeeded(self, name: str | None) -> None:
        if name:
            with self._lock:
                self._entries.pop(f"name:{name}", None)

    def _forget(self, now: float) -> None:
        """Drop stale entries; if all are fresh (a flood of addresses), the oldest half."""
        stale = [k for k, e in self._entries.items() if now - e.last > self.settings.forget_after
                 and e.locked_until <= now]
        for k in stale:
            del self._entries[k]
        if len(self._entries) >= self.settings.max_entries:
            for k, _ in sorted(self._entries.items(), key=lambda kv: kv[1].last)[: len(self._entries) // 2]:
                del self._entries[k]
