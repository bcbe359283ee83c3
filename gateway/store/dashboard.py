"""Aggregates behind the console's dashboard: counts of a time range by status and over time, delivery
rate, time to the delivery report, top error reasons. Each is one indexed query: the counts read
``messages_created`` (creation time, status group, state) alone, or ``messages_caller`` for one caller; the
report delays are exact percentiles of the latest ``DELAY_SAMPLE`` deliveries of the range (a bounded
sample, so a week of a million messages costs the same as an hour)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, select

from .dialects import floor_div
from .engine import Database
from .schema import messages as M
from .schema import upstream_attempts

FAILED_GROUPS = ("UNDELIVERABLE", "REJECTED", "EXPIRED")
FAILED_STATES = ("failed", "rejected", "expired")
DELAY_SAMPLE = 10_000


@dataclass
class Stats:
    start: float
    end: float
    bucket_seconds: float
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    series: list[dict[str, Any]] = field(default_factory=list)  # per bucket: t, delivered, failed, pending
    delay_p50: float | None = None
    delay_p95: float | None = None
    delay_sample: int = 0
    top_errors: list[tuple[str, int]] = field(default_factory=list)

    @property
    def delivery_rate(self) -> float | None:
        """Delivered among the messages whose outcome is known (delivered or failed)."""
        done = self.delivered + self.failed
        return self.delivered / done if done else None


def _kind(group: str | None, state: str | None) -> str:
    if group == "DELIVERED":
        return "delivered"
    if group in FAILED_GROUPS or (group is None and state in FAILED_STATES):
        return "failed"
    return "pending"


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = q * (len(sorted_values) - 1)
    lo, hi = int(i), min(int(i) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (i - lo)


def stats(db: Database, start: float, end: float, buckets: int, caller: str = "", template: str = "") -> Stats:
    """The dashboard's figures for messages created in ``[start, end]``, optionally one caller's or one
    template's, with the range cut into ``buckets`` equal steps."""
    width = (end - start) / buckets
    out = Stats(start, end, width, series=[{"t": start + i * width, "delivered": 0, "failed": 0, "pending": 0}
                                           for i in range(buckets)])
    where = [M.c.created_at >= start, M.c.created_at <= end]  # up to now, inclusive
    if caller:
        where.append(M.c.caller == caller)
    if template:
        where.append(M.c.entrance == f"template:{template}")
    cond = and_(*where)
    conn = db.connection()
    b = floor_div(conn, M.c.created_at - start, width).label("b")
    for bucket, group, state, n in conn.execute(
            select(b, M.c.status_group_name, M.c.state, func.count()).where(cond)
            .group_by(b, M.c.status_group_name, M.c.state)):
        kind = _kind(group, state)
        out.series[min(max(int(bucket), 0), buckets - 1)][kind] += n
        setattr(out, kind, getattr(out, kind) + n)
        out.sent += n
    delivered = and_(cond, M.c.status_group_name == "DELIVERED", M.c.sent_at.is_not(None), M.c.done_at.is_not(None))
    delays = sorted(max(0.0, d) for (d,) in conn.execute(
        select(M.c.done_at - M.c.sent_at).where(delivered).order_by(M.c.created_at.desc()).limit(DELAY_SAMPLE)))
    out.delay_p50, out.delay_p95, out.delay_sample = _percentile(delays, 0.5), _percentile(delays, 0.95), len(delays)
    failed = and_(cond, (M.c.status_group_name.in_(FAILED_GROUPS))
                  | (M.c.status_group_name.is_(None) & M.c.state.in_(FAILED_STATES)))
    reason = func.coalesce(M.c.status_name, M.c.state)
    out.top_errors = [(str(r), int(n)) for r, n in conn.execute(
        select(reason, func.count().label("n")).where(failed).group_by(reason).order_by(func.count().desc()).limit(5))]
    return out


@dataclass
class UpstreamHealth:
    """The upstream as the bridge's own attempts saw it recently (every process's, from the store)."""

    attempts: int
    errors: int
    last_at: float | None
    last_status: int | None
    last_error: str | None


def upstream_health(db: Database, since: float) -> UpstreamHealth:
    """Attempts since ``since`` (errors: no answer, or an HTTP status of 500 and above, or 429) and the last
    attempt."""
    a = upstream_attempts
    conn = db.connection()
    bad = a.c.error.is_not(None) | (a.c.http_status >= 500) | (a.c.http_status == 429)
    n, errors = conn.execute(select(func.count(), func.coalesce(func.sum(case((bad, 1), else_=0)), 0))
                             .where(a.c.at >= since)).one()
    last = conn.execute(select(a.c.at, a.c.http_status, a.c.error).order_by(a.c.id.desc()).limit(1)).first()
    return UpstreamHealth(int(n), int(errors), last[0] if last else None, last[1] if last else None,
                          last[2] if last else None)
