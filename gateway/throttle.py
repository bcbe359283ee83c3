"""Failed logins cost the attacker, not the bridge.

Failures are counted per caller name and per client address. The first ``free_failures`` of either cost
nothing (people mistype); each further failure locks that name or address for a delay that doubles, from
``first_delay`` up to ``max_delay`` seconds. While locked, an attempt is refused at once (429 with
``Retry-After``) without checking the secret: no password hash runs, so guessing burns neither the
bridge's CPU nor its time. A success clears its name's count (not its address's: one known account must
not reset the count of an address that guesses others). Counts are forgotten ``forget_after`` seconds
after their last failure.

Counts and locks are the cluster's: every process on one store (``--workers N``, or hosts on one
PostgreSQL) counts each failure in the store (gateway/store/throttle.py: one upsert, so concurrent failures
on two processes both count) and locks by the count the cluster reached, so spreading guesses over the
processes buys no more free failures. No request waits on the store to be checked: ``check()`` reads this
process's memory only — its own failures, and the cluster's locks and recent failures as read from the
store at most every ``sync_interval`` seconds by the first request that finds that view stale (one query;
the other requests go on meanwhile with the view they have). A lock set elsewhere is therefore refused here
within ``sync_interval``. A success clears its name in the store only when this process knows of failures
for it, so a correct login costs no database round trip. If the store cannot be reached, failures are
counted by this process alone until it can. Memory is bounded to ``max_entries`` keys; the store's rows are
pruned ``forget_after`` seconds after their last failure, once their lock has ended (gateway/services.py).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from .clock import Clock
from .config import ThrottleSettings
from .errors import Throttled
from .store import throttle as shared
from .store.engine import DB_ERRORS, Database

log = logging.getLogger("smsbridge")

#: seconds by which each read of the cluster's recent failures overlaps the previous one (hosts' clocks differ)
SKEW = 5.0


@dataclass
class _Entry:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass
class LoginThrottle:
    settings: ThrottleSettings
    clock: Clock
    db: Database  # the store every process of the cluster shares
    failures_total: dict[str, int] = field(default_factory=dict)  # by kind (api, ui), for /metrics
    refused_total: dict[str, int] = field(default_factory=dict)
    _entries: dict[str, _Entry] = field(default_factory=dict)  # own failures, and others' from the store
    _cluster: dict[str, float] = field(default_factory=dict)  # the cluster's locks at the last read: key -> until
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reading: threading.Lock = field(default_factory=threading.Lock)  # one read of the store at a time
    _fresh_until: float = float("-inf")  # the view is read again from then on
    _read_at: float | None = None  # when it was last read

    @staticmethod
    def keys(name: str | None, address: str | None) -> list[str]:
        return [k for k in (f"name:{name}" if name else "", f"addr:{address}" if address else "") if k]

    def check(self, keys: list[str], kind: str) -> None:
        """Raise :class:`Throttled` if any of ``keys`` is locked now (here or, as last read, in the cluster)."""
        now = self.clock.now()
        if now >= self._fresh_until:
            self._read(now)
        with self._lock:
            wait = max((self._until(k) - now for k in keys), default=0.0)
            if wait > 0:
                self.refused_total[kind] = self.refused_total.get(kind, 0) + 1
        if wait > 0:
            raise Throttled(f"Too many failed logins: try again in {int(wait) + 1} s", wait)

    def failed(self, keys: list[str], kind: str) -> None:
        now = self.clock.now()
        s = self.settings
        try:
            rows = shared.fail(self.db, keys, now, s.forget_after, self._delay)
        except DB_ERRORS:
            log.warning("failed logins cannot be counted in the store now: counted by this process alone",
                        exc_info=True)
            rows = None
        with self._lock:
            self.failures_total[kind] = self.failures_total.get(kind, 0) + 1
            if len(self._entries) >= s.max_entries:
                self._forget(now)
            if rows is not None:
                for r in rows:
                    self._entries[r.key] = _Entry(r.failures, r.locked_until, r.last)
                return
            for k in keys:
                e = self._entries.get(k)
                if e is None or now - e.last > s.forget_after:
                    e = self._entries[k] = _Entry()
                e.failures += 1
                e.last = now
                if (delay := self._delay(e.failures)) > 0:
                    e.locked_until = now + delay

    def succeeded(self, name: str | None) -> None:
        if not name:
            return
        key = f"name:{name}"
        with self._lock:
            known = self._entries.pop(key, None) is not None
            self._cluster.pop(key, None)
        if known:  # failures here or elsewhere, as far as this process knows: the cluster forgets them too
            try:
                shared.clear(self.db, key)
            except DB_ERRORS:
                log.warning("a success could not clear its name's failed logins in the store", exc_info=True)

    def _delay(self, failures: int) -> float:
        """Seconds of the lock ``failures`` earn (0: none yet)."""
        s = self.settings
        over = failures - s.free_failures
        return min(s.max_delay, s.first_delay * 2 ** min(over - 1, 40)) if over > 0 else 0.0

    def _until(self, key: str) -> float:
        e = self._entries.get(key)
        return max(e.locked_until if e else 0.0, self._cluster.get(key, 0.0))

    def _read(self, now: float) -> None:
        """Read the cluster's locks and recent failures into this process's view; single flight: a thread
        that finds another reading goes on with the view as it is."""
        if not self._reading.acquire(blocking=False):
            return
        try:
            if now < self._fresh_until:
                return
            s = self.settings
            self._fresh_until = now + s.sync_interval  # also after a failed read: no retry per request
            since = now - s.forget_after if self._read_at is None else self._read_at - SKEW
            try:
                rows = shared.view(self.db, now, since)
            except DB_ERRORS:
                log.warning("the cluster's failed logins cannot be read now: this process goes on with its view",
                            exc_info=True)
                return
            self._read_at = now
            with self._lock:
                self._cluster = {r.key: r.locked_until for r in rows if r.locked_until > now}
                for r in rows:
                    e = self._entries.get(r.key)
                    if e is None:
                        if len(self._entries) >= s.max_entries:
                            self._forget(now)
                        self._entries[r.key] = _Entry(r.failures, 0.0, r.last)
                    elif r.last > e.last:
                        e.failures, e.last = r.failures, r.last
        finally:
            self._reading.release()

    def _forget(self, now: float) -> None:
        """Drop stale entries; if all are fresh (a flood of addresses), the oldest half."""
        stale = [k for k, e in self._entries.items() if now - e.last > self.settings.forget_after
                 and e.locked_until <= now]
        for k in stale:
            del self._entries[k]
        if len(self._entries) >= self.settings.max_entries:
            for k, _ in sorted(self._entries.items(), key=lambda kv: kv[1].last)[: len(self._entries) // 2]:
                del self._entries[k]
