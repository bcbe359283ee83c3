"""Failed logins cost the attacker, not the bridge.

Failures are counted per caller name and per client address. The first ``free_failures`` of either cost
nothing (people mistype); each further failure locks that name or address for a delay that doubles, from
``first_delay`` up to ``max_delay`` seconds. While locked, an attempt is refused at once (429 with
``Retry-After``) without checking the secret: no password hash runs, so guessing burns neither the
bridge's CPU nor its time. Concurrent guesses are held in flight against the count (``check()`` reserves
them), so a burst checks no more secrets than the same guesses one after the other. A success clears its
name's count (not its address's: one known account must not reset the count of an address that guesses
others). Counts are forgotten ``forget_after`` seconds
after their last failure and the end of its lock (so a lock of ``max_delay`` is followed by another, not by
a fresh set of free failures).

Counts and locks are the cluster's: every process on one store (``--workers N``, or hosts on one
PostgreSQL) counts each failure in the store (gateway/store/throttle.py: one upsert, so concurrent failures
on two processes both count) and locks by the count the cluster reached, so spreading guesses over the
processes buys no more free failures. ``check()`` answers from this process's memory: its own failures,
and the cluster's locks and recent failures as read from the store. That view is read again at most every
``sync_interval`` seconds, inline by the first request that finds it stale (one query; the other requests
go on meanwhile with the view they have): the whole table's locks once, then only the rows written since
the last read (every new lock, count and clear), so a read costs what changed, not what is locked. A lock
set elsewhere is therefore refused here within ``sync_interval``. A success clears its name in the store
(the cluster forgets it at its next reads) only when this process knows of failures for it, so a correct
login costs no database round trip. If the store cannot be reached, failures are counted by this process
alone until it can. Memory is bounded: ``max_entries`` counts, and as many of the cluster's locks (those
ending soonest go first); the store's rows are pruned once forgotten (gateway/services.py).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .clock import Clock
from .config import ThrottleSettings
from .errors import Throttled
from .store import throttle as shared
from .store.engine import DB_ERRORS, Database

log = logging.getLogger("smsbridge")

#: seconds by which each read of the cluster's recent failures overlaps the previous one (hosts' clocks differ)
SKEW = 5.0
#: seconds between two warnings of the store's errors (the first with its traceback)
WARN_EVERY = 60
#: a caller name or address longer than this, or not printable, is counted under its hash (:func:`key`)
KEY_CHARS = 128
#: seconds an attempt past the free failures waits for those in flight on its keys to end (then 429)
RESERVE_WAIT = 5.0
#: rows of a read merged per hold of the lock ``check()`` takes (a long read does not stall the logins)
BATCH = 1000


def key(kind: str, value: str) -> str:
    """``kind:value``, or ``kind#<sha256 of value>`` for a value too long or not printable (a NUL, other
    controls, a lone surrogate): every store keeps such a key, and memory and the store count it alike."""
    if len(value) <= KEY_CHARS and value.isprintable():
        return f"{kind}:{value}"
    return f"{kind}#{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}"


@dataclass
class _Entry:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0

    def forgotten(self, now: float, forget_after: float) -> bool:
        """``forget_after`` seconds after the last failure and the end of its lock (the store's rule)."""
        return now - max(self.last, self.locked_until) > forget_after


@dataclass
class LoginThrottle:
    settings: ThrottleSettings
    clock: Clock
    db: Database  # the store every process of the cluster shares
    failures_total: dict[str, int] = field(default_factory=dict)  # by kind (api, ui), for /metrics
    refused_total: dict[str, int] = field(default_factory=dict)
    _entries: dict[str, _Entry] = field(default_factory=dict)  # own failures, and others' from the store
    _cluster: dict[str, float] = field(default_factory=dict)  # the cluster's locks as read: key -> until;
    # replaced whole by the one reading thread, never changed in place (so it is built outside the lock)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reading: threading.Lock = field(default_factory=threading.Lock)  # one read of the store at a time
    _fresh_until: float = float("-inf")  # the view is read again from then on
    _read_at: float | None = None  # when it was last read
    _quiet_until: float = float("-inf")  # the store's errors are not logged until then (_store_failed)
    _unlogged: int = 0
    _inflight: dict[str, int] = field(default_factory=dict)  # attempts reserved by check(), by key

    @staticmethod
    def keys(name: str | None, address: str | None) -> list[str]:
        """The keys a login from ``address`` as ``name`` counts under (:func:`key`)."""
        return [key(kind, v) for kind, v in (("name", name), ("addr", address)) if v]

    def __post_init__(self) -> None:
        self._ended = threading.Condition(self._lock)  # a reserved attempt ended (release())

    def check(self, keys: list[str], kind: str, guess: Callable[[], bool] | None = None) -> bool:
        """Raise :class:`Throttled` if any of ``keys`` is locked now (here or, as last read, in the cluster).

        ``guess`` (asked under the lock, so cheap) tells whether the attempt checks a secret not verified
        before. Such attempts are reserved while in flight, so that concurrent guesses cannot all pass before
        the first failure lands: one is let through while a key's failures plus the reserved attempts are
        at most ``free_failures``, or none is in flight (as one after the other: an unlocked key gets one
        more check); past that it waits (at most ``RESERVE_WAIT`` seconds, then 429) for one
        to end: a failure may lock the key, a success verifies a legitimate caller's concurrent logins,
        which then need no reservation. True if reserved: the caller must :meth:`release` it, however the
        attempt ends (after :meth:`failed`, so that the failure counts before its reservation ends)."""
        now = self.clock.now()
        if now >= self._fresh_until:
            self._read(now)
        deadline = time.monotonic() + RESERVE_WAIT
        with self._lock:
            while True:
                wait = max((self._until(k) - now for k in keys), default=0.0)
                if wait <= 0 and guess is not None and guess():
                    full = self.settings.free_failures
                    if all(not (n := self._inflight.get(k, 0)) or self._failures(k, now) + n <= full for k in keys):
                        for k in keys:
                            self._inflight[k] = self._inflight.get(k, 0) + 1
                        return True
                    if (left := deadline - time.monotonic()) > 0:
                        self._ended.wait(left)
                        now = self.clock.now()
                        continue
                    wait = 0.5  # the attempts in flight end within a password hash's time
                if wait > 0:
                    self.refused_total[kind] = self.refused_total.get(kind, 0) + 1
                break
        if wait > 0:
            raise Throttled(f"Too many failed logins: try again in {int(wait) + 1} s", wait)
        return False

    def release(self, keys: list[str]) -> None:
        """End an attempt :meth:`check` reserved."""
        with self._lock:
            for k in keys:
                if (n := self._inflight.pop(k, 0) - 1) > 0:
                    self._inflight[k] = n
            self._ended.notify_all()

    def failed(self, keys: list[str], kind: str) -> None:
        now = self.clock.now()
        s = self.settings
        try:
            rows = shared.fail(self.db, keys, now, s.forget_after, self._delay)
        except DB_ERRORS as exc:
            self._store_failed("failed logins cannot be counted in the store now: counted by this process alone",
                               exc)
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
                if e is None or e.forgotten(now, s.forget_after):
                    e = self._entries[k] = _Entry()
                e.failures += 1
                e.last = now
                if (delay := self._delay(e.failures)) > 0:
                    e.locked_until = now + delay

    def succeeded(self, name: str | None) -> None:
        if not name:
            return
        name_key = key("name", name)
        with self._lock:  # the cluster's view has no live lock for key (check() passed): the next read's clear
            known = self._entries.pop(name_key, None) is not None
        if known:  # failures here or elsewhere, as far as this process knows: the cluster forgets them too
            try:
                shared.clear(self.db, name_key, self.clock.now())
            except DB_ERRORS as exc:
                self._store_failed("a success could not clear its name's failed logins in the store", exc)

    def _store_failed(self, what: str, exc: BaseException) -> None:
        """Log that the store failed: the first time with its traceback, then at most once every
        ``WARN_EVERY`` seconds, one line (an attack while the store is down must not flood the log)."""
        now = self.clock.now()
        with self._lock:
            if now < self._quiet_until:
                self._unlogged += 1
                return
            first, unlogged = self._quiet_until == float("-inf"), self._unlogged
            self._quiet_until, self._unlogged = now + WARN_EVERY, 0
        if first:
            log.warning("%s", what, exc_info=exc)
        else:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("%s: %s (%d more store errors of the login throttle not logged in the last %d s)",
                        what, reason, unlogged, WARN_EVERY)

    def _delay(self, failures: int) -> float:
        """Seconds of the lock ``failures`` earn (0: none yet)."""
        s = self.settings
        over = failures - s.free_failures
        return min(s.max_delay, s.first_delay * 2 ** min(over - 1, 40)) if over > 0 else 0.0

    def _failures(self, key: str, now: float) -> int:
        """``key``'s count as this process knows it (its own and the cluster's as read)."""
        e = self._entries.get(key)
        return 0 if e is None or e.forgotten(now, self.settings.forget_after) else e.failures

    def _until(self, key: str) -> float:
        e = self._entries.get(key)
        return max(e.locked_until if e else 0.0, self._cluster.get(key, 0.0))

    def _read(self, now: float) -> None:
        """Read what the cluster changed into this process's view; single flight: a thread that finds another
        reading goes on with the view as it is."""
        if not self._reading.acquire(blocking=False):
            return
        try:
            if now < self._fresh_until:
                return
            s = self.settings
            self._fresh_until = now + s.sync_interval  # also after a failed read: no retry per request
            first = self._read_at is None  # the counts not yet forgotten (locks included); then what changed
            try:
                live = now - s.forget_after  # a count lives forget_after seconds past its last failure and lock
                rows = shared.view(self.db, live, live) if first else shared.view(self.db, None,
                                                                                  self._read_at - SKEW)
            except DB_ERRORS as exc:
                self._store_failed("the cluster's failed logins cannot be read now: this process goes on with its "
                                   "view", exc)
                return
            self._read_at = now
            cluster = {k: until for k, until in self._cluster.items() if until > now}
            for r in rows:
                if r.locked_until > now:
                    cluster[r.key] = r.locked_until
                else:  # ended, or cleared by a success
                    cluster.pop(r.key, None)
            if len(cluster) > s.max_entries:  # a flood of locked addresses: keep those locked longest
                for k in heapq.nsmallest(len(cluster) - s.max_entries, cluster, key=cluster.__getitem__):
                    del cluster[k]
            with self._lock:
                self._cluster = cluster
            for i in range(0, len(rows), BATCH):
                with self._lock:
                    self._merge(rows[i:i + BATCH])
        finally:
            self._reading.release()

    def _merge(self, rows: list[shared.Failures]) -> None:
        """The cluster's counts (newer than this process's) into ``_entries``; under ``_lock``."""
        for r in rows:
            e = self._entries.get(r.key)
            if e is None:  # when full, not kept: the store counts it (and _cluster holds its lock)
                if r.failures and len(self._entries) < self.settings.max_entries:
                    self._entries[r.key] = _Entry(r.failures, 0.0, r.last)
            elif r.last >= e.last:
                if r.failures:
                    e.failures, e.last = r.failures, r.last
                else:  # a success elsewhere cleared it after this process's last failure
                    del self._entries[r.key]

    def _forget(self, now: float) -> None:
        """Drop stale entries; if all are fresh (a flood of addresses), the oldest half."""
        stale = [k for k, e in self._entries.items() if e.forgotten(now, self.settings.forget_after)]
        for k in stale:
            del self._entries[k]
        if len(self._entries) >= self.settings.max_entries:
            for k, _ in sorted(self._entries.items(), key=lambda kv: kv[1].last)[: len(self._entries) // 2]:
                del self._entries[k]
