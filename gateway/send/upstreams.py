"""Several upstreams in failover order, each behind a circuit breaker (docs/delivery.md, "Failover").

A :class:`Breaker` is *closed* (sends go there), *open* after ``failures_to_open`` consecutive failures
(nothing is sent there for ``cooldown`` seconds) and *half-open* once the cool-down has run out: one
caller probes it with a real authenticated request (:meth:`UpstreamClient.check`, the account balance);
success closes it, failure opens it for another cool-down. :meth:`Upstreams.pick` gives the first upstream
whose circuit is closed (or whose probe just succeeded). With a single upstream the circuit is only watched
(``/metrics``, ``/readyz``): there is nowhere else to send, and the queue's backoff paces retries as before.

What counts as a failure: no connection, a timeout or a dropped connection, an unreadable answer, a 5xx
and a 401/403 (the account's key is refused there). A 400 (the request's own fault) and a 429 (a rate
limit, paced by the queue) are answers from a working upstream. Which failures let a message *move* to
another upstream is the send path's business (:func:`not_taken`), not the breaker's.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from ..clock import Clock
from ..errors import UpstreamError, UpstreamRefused, UpstreamUnreachable
from .upstream import UpstreamClient

log = logging.getLogger(__name__)

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATES = (CLOSED, HALF_OPEN, OPEN)


def is_failure(exc: UpstreamError) -> bool:
    """Does ``exc`` say the upstream is unwell (rather than the request being refused on its merits)?"""
    if isinstance(exc, UpstreamRefused):
        return exc.status >= 500 or exc.status in (401, 403)
    return True


def not_taken(exc: UpstreamError) -> bool:
    """Did the upstream certainly not take the request? (No connection, or an error answer other than a
    400.) A timeout, a dropped connection or an unreadable answer may hide an acceptance: never."""
    if isinstance(exc, UpstreamUnreachable):
        return True
    return isinstance(exc, UpstreamRefused) and exc.status != 400


@dataclass
class Breaker:
    """One upstream's circuit; thread-safe; times are the bridge clock's."""

    failures_to_open: int
    cooldown: float
    state: str = CLOSED
    failures: int = 0  # consecutive
    opened_at: float = 0.0
    transitions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _probing: bool = False

    def _move(self, state: str, now: float) -> None:
        if state != self.state:
            self.state = state
            self.transitions[state] += 1
        if state == OPEN:
            self.opened_at = now

    def success(self, now: float) -> None:
        with self._lock:
            self.failures = 0
            self._move(CLOSED, now)

    def failure(self, now: float) -> None:
        with self._lock:
            self.failures += 1
            if self.state == HALF_OPEN or self.failures >= self.failures_to_open:
                self._move(OPEN, now)

    def probe_due(self, now: float) -> bool:
        """True for the one caller that should probe now (open, cool-down over, nobody probing): half-open."""
        with self._lock:
            if self.state != OPEN or self._probing or now < self.opened_at + self.cooldown:
                return False
            self._probing = True
            self._move(HALF_OPEN, now)
            return True

    def probed(self, ok: bool, now: float) -> None:
        with self._lock:
            self._probing = False
            if ok:
                self.failures = 0
                self._move(CLOSED, now)
            else:
                self._move(OPEN, now)

    def retry_at(self) -> float:
        """When an open circuit may be probed again."""
        return self.opened_at + self.cooldown


@dataclass
class Route:
    """One configured upstream: its name, client and circuit."""

    name: str
    client: UpstreamClient
    breaker: Breaker


class Upstreams:
    """The configured upstreams in failover order (``routes[0]`` is the primary)."""

    def __init__(self, routes: list[Route], clock: Clock, probe_timeout: float = 2.0) -> None:
        self.routes = routes
        self.clock = clock
        self.probe_timeout = probe_timeout  # seconds: a half-open probe may run inside a sync request
        self.by_name = {r.name: r for r in routes}
        # one upstream: nowhere else to go, so its circuit is only watched (metrics, readiness) and the queue's
        # own backoff paces the retries, as without failover
        self.gated = len(routes) > 1

    @property
    def primary(self) -> Route:
        return self.routes[0]

    def available(self, route: Route) -> bool:
        """May a send go to ``route`` now? Closed, or open with its cool-down over and its probe passed."""
        b = route.breaker
        if b.state == CLOSED or not self.gated:
            return True
        now = self.clock.now()
        if not b.probe_due(now):
            return False
        ok = bool(route.client.check(self.probe_timeout)["ok"])
        b.probed(ok, now)
        log.warning("upstream %s: half-open probe %s; circuit %s", route.name, "passed" if ok else "failed",
                    b.state)
        return ok

    def pick(self, exclude: tuple[str, ...] = ()) -> Route | None:
        """The first available upstream not in ``exclude``; None when every circuit is open."""
        for route in self.routes:
            if route.name not in exclude and self.available(route):
                return route
        return None

    def next_retry(self) -> float:
        """The earliest time an open circuit may be probed again (clock seconds)."""
        return min((r.breaker.retry_at() for r in self.routes), default=self.clock.now())

    def record(self, route: Route, exc: UpstreamError | None) -> None:
        """Tell ``route``'s breaker how a call went (None: answered)."""
        now = self.clock.now()
        if exc is None or not is_failure(exc):
            route.breaker.success(now)
            return
        before = route.breaker.state
        route.breaker.failure(now)
        if before != OPEN and route.breaker.state == OPEN:
            log.warning("upstream %s: circuit open after %d consecutive failure(s) (%s)", route.name,
                        route.breaker.failures, exc.text)

    def close(self) -> None:
        for r in self.routes:
            r.client.close()
