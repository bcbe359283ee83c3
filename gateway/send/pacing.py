"""Pacing: sends above a rate wait in the durable queue and leave at the rate, never refused.

Token buckets (``limits.rate`` per caller and per template, ``upstream.rate`` for the whole account, each of
``upstreams[]``'s own ``rate`` for its account) live in
the store (gateway/store/pace.py), so every process of a ``--workers`` bridge, or every bridge on one
PostgreSQL database, spends the same tokens: the pace holds for the account, not per process.

* A message leaves only with one token from each of its buckets (its caller's, its template's, and the account's
  of the upstream it goes to: the one it is pinned to, else the claim's; a sync send spends the bucket of the
  upstream picked for it when it is admitted).
  A bucket holds at most ``burst`` tokens and gains ``per_second`` a second.
* The queue worker claims due messages, lets through those whose buckets have tokens and gives the others
  back, each due when its blocking bucket is projected to have a token for it (``horizon``, one
  ``1/per_second`` after the previous one deferred): a long queue is claimed about twice per message, not
  once per token. The projection is only a schedule: a message still takes a real token when due.
* A sync send over its rate is accepted into the queue (PENDING_ACCEPTED, like a hand-over) and forwarded
  when its turn comes: a legacy app's send is never refused for speed.
* An upstream 429 pauses every worker of every process (``paused_until`` on the ``upstream`` bucket) for its
  ``Retry-After`` (else ``queue.retry_base``), and empties the account's bucket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..store import pace as repo
from ..store.engine import Database

if TYPE_CHECKING:
    from ..clock import Clock
    from ..config import Config
    from ..model import QueuedMessage

UPSTREAM = "upstream"


@dataclass(frozen=True)
class Rate:
    """``per_second`` messages a second on average, ``burst`` at once after a quiet spell."""

    per_second: float
    burst: float

    def describe(self) -> str:
        return f"{self.per_second:g}/s (burst {self.burst:g})"


def parse_rate(value: Any) -> tuple[Rate | None, str | None]:
    """``rate: 5`` (burst: one second's worth, at least 1) or ``rate: {per_second: 5, burst: 20}``."""
    usage = "must be messages per second (a number above 0) or {per_second: N, burst: M}"
    if isinstance(value, dict):
        unknown = [k for k in value if k not in ("per_second", "burst")]
        if unknown:
            return None, f"unknown key {unknown[0]!r}; known: burst, per_second"
        per_second, burst = value.get("per_second"), value.get("burst")
    else:
        per_second, burst = value, None
    if isinstance(per_second, bool) or not isinstance(per_second, int | float) or not 0 < per_second < math.inf:
        return None, f"{usage}, got {value!r}"
    if burst is None:
        burst = max(1.0, float(per_second))
    if isinstance(burst, bool) or not isinstance(burst, int | float) or not 1 <= burst < math.inf:
        return None, f"burst must be a number, 1 or more, got {burst!r}"
    return Rate(float(per_second), float(burst)), None


def _refill(b: repo.Bucket, rate: Rate, now: float) -> None:
    if now > b.at:
        b.tokens = min(rate.burst, b.tokens + (now - b.at) * rate.per_second)
        b.at = now


class Pacer:
    """The buckets of one bridge's configuration, spent through the store."""

    def __init__(self, config: Config, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock
        self.retry_base = config.queue.retry_base * config.queue.time_scale
        self.rates: dict[str, Rate] = {}
        self.primary = config.upstreams[0].name
        for up in config.upstreams:  # each upstream's own account pace (failover: upstreams[].rate)
            if up.rate:
                self.rates[self.upstream_key(up.name)] = up.rate
        for name, c in config.callers.items():
            if c.rate:
                self.rates[f"caller:{name}"] = c.rate
        for name, t in config.templates.items():
            if t.rate:
                self.rates[f"template:{name}"] = t.rate

    @property
    def enabled(self) -> bool:
        return bool(self.rates)

    def upstream_key(self, name: str | None) -> str:
        """The bucket of upstream ``name``: ``upstream`` for the first (the only one, without failover),
        ``upstream:<name>`` for the others."""
        return UPSTREAM if name is None or name == self.primary else f"upstream:{name}"

    def keys(self, caller: str | None, entrance: str, upstream: str | None = None) -> tuple[str, ...]:
        """The buckets a message of ``caller`` through ``entrance`` (``template:<name>``…) to ``upstream``
        spends."""
        return tuple(k for k in (self.upstream_key(upstream), f"caller:{caller}", entrance) if k in self.rates)

    def admit(self, caller: str | None, entrance: str, n: int, upstream: str | None = None) -> bool:
        """A sync send of ``n`` messages to ``upstream`` (the one picked for it): take ``n`` tokens from each
        of its buckets now, or none (False: it goes through the queue). Never admitted while the upstream
        asked the bridge to pause."""
        keys = self.keys(caller, entrance, upstream)
        if not keys:
            return True
        now = self.clock.now()
        with self.db.transaction(relaxed=True) as c:
            buckets = repo.load(c, {*keys, UPSTREAM})
            if buckets[UPSTREAM].paused_until > now:
                return False
            for k in keys:
                _refill(buckets[k], self.rates[k], now)
            if any(buckets[k].tokens < n for k in keys):
                repo.save(c, (buckets[k] for k in keys))
                return False
            for k in keys:
                buckets[k].tokens -= n
                buckets[k].taken += n
            repo.save(c, (buckets[k] for k in keys))
        return True

    def gate(self, rows: Sequence[QueuedMessage], route: str | None = None
             ) -> tuple[list[QueuedMessage], list[tuple[QueuedMessage, float]]]:
        """Claimed rows, oldest first: those that may leave now, and the others with when each is due. A row
        spends the bucket of the upstream it is pinned to, else of ``route`` (where the claim sends it)."""
        now = self.clock.now()
        wanted = {k for r in rows for k in self.keys(r.caller, r.entrance, r.upstream or route)}
        go: list[QueuedMessage] = []
        wait: list[tuple[QueuedMessage, float]] = []
        with self.db.transaction(relaxed=True) as c:
            buckets = repo.load(c, {*wanted, UPSTREAM})
            paused = buckets[UPSTREAM].paused_until
            if paused > now:
                return [], [(r, paused) for r in rows]
            for k in wanted:
                _refill(buckets[k], self.rates[k], now)
            for r in rows:
                keys = self.keys(r.caller, r.entrance, r.upstream or route)
                short = [buckets[k] for k in keys if buckets[k].tokens < 1]
                if not short:
                    for k in keys:
                        buckets[k].tokens -= 1
                        buckets[k].taken += 1
                    go.append(r)
                    continue
                due = now
                for b in short:  # the latest of the blocking buckets' projected turns
                    rate = self.rates[b.key]
                    turn = max(b.horizon + 1 / rate.per_second, now + (1 - b.tokens) / rate.per_second)
                    b.horizon = turn
                    due = max(due, turn)
                wait.append((r, due))
            repo.save(c, (buckets[k] for k in wanted))
        return go, wait

    def pause(self, retry_after: float | None) -> float:
        """The upstream answered 429: every worker waits ``retry_after`` seconds (else ``queue.retry_base``);
        return until when."""
        now = self.clock.now()
        until = now + (retry_after if retry_after is not None else self.retry_base)
        with self.db.transaction(relaxed=True) as c:
            b = repo.load(c, [UPSTREAM])[UPSTREAM]
            b.paused_until = max(b.paused_until, until)
            b.tokens, b.at = 0.0, max(b.at, now)
            repo.save(c, [b])
        return until

    def waiting(self) -> dict[str | None, tuple[int, float]]:
        """Per caller: messages waiting in the queue and when the oldest was accepted."""
        return repo.waiting_by_caller(self.db)

    def paused_until(self) -> float | None:
        b = repo.snapshot(self.db).get(UPSTREAM)
        return b.paused_until if b and b.paused_until > self.clock.now() else None

    def state(self) -> list[dict[str, Any]]:
        """Each configured bucket: its rate, tokens now, messages let through (admin UI, /metrics)."""
        now = self.clock.now()
        stored = repo.snapshot(self.db)
        out = []
        for key, rate in sorted(self.rates.items()):
            b = stored.get(key) or repo.Bucket(key, rate.burst, now, 0.0, 0.0, 0)
            _refill(b, rate, now)
            out.append({"key": key, "rate": rate, "tokens": b.tokens, "taken": b.taken})
        return out
