"""Prometheus metrics on a per-app ``CollectorRegistry`` (never the global one: two apps in one
process, as in the tests, keep separate counts).

Counted on the hot path (cheap increments): requests by entrance and outcome, their duration by entrance and
status class, messages and parts sent (sync answers and the queue workers' batches alike) and which upstream
carried them, upstream latency and errors (from the sender's attempts). Read at scrape time: the outbox's
depth, the age of its oldest waiting job, its retries and dead letters; the store's group commits; the queue's
depth and oldest waiting message per caller; each upstream's circuit; the process (CPU, memory, open files).
Alert rules and a dashboard built on them: docs/prometheus/alerts.yml, docs/grafana/smsbridge.json.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .delivery.outbox import Outbox
from .inbound.loops import REASONS, ReplyGuard
from .model import Submission, SubmissionResult
from .send.idempotency import Idempotency
from .send.pacing import Pacer
from .send.upstream import Attempt
from .send.upstreams import STATES, Upstreams
from .store import periodic, rejected
from .store.engine import Database
from .store.records import Store
from .throttle import LoginThrottle

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def outcome_of(status: int) -> str:
    """``ok`` (2xx/3xx), ``rejected`` (4xx: the caller's request) or ``failed`` (5xx)."""
    return "ok" if status < 400 else "rejected" if status < 500 else "failed"


class OutboxCollector(Collector):
    """Outbox gauges and counters, read from the database and the outbox when scraped."""

    def __init__(self, outbox: Outbox):
        self.outbox = outbox

    def collect(self) -> Iterator[Metric]:
        stats = self.outbox.stats()
        age = self.outbox.oldest_age()
        yield GaugeMetricFamily("smsbridge_outbox_depth", "Outbox jobs waiting or being delivered",
                                value=stats["depth"])
        yield GaugeMetricFamily("smsbridge_outbox_oldest_job_age_seconds",
                                "Age of the oldest waiting outbox job (0 when none)", value=age or 0.0)
        yield GaugeMetricFamily("smsbridge_outbox_dead_letters", "Outbox jobs that exhausted their retries",
                                value=stats["dead_letters"])
        for key, help_ in (("attempts", "Outbox delivery attempts"), ("delivered", "Outbox jobs delivered"),
                           ("retries", "Outbox attempts that failed and were rescheduled"),
                           ("dead", "Outbox jobs moved to dead letters")):
            yield CounterMetricFamily(f"smsbridge_outbox_{key}", help_ + " (this process)", value=stats.get(key, 0))


class StoreCollector(Collector):
    """Group commit: transactions committed and the submissions they held, per group (``accept``: queued
    acceptances, fsynced; ``record``: sync records, relaxed). Submissions ÷ transactions is the batching."""

    def __init__(self, store: Store):
        self.store = store

    def collect(self) -> Iterator[Metric]:
        tx = CounterMetricFamily("smsbridge_store_group_commits", "Group-commit transactions (this process)",
                                 labels=["group"])
        subs = CounterMetricFamily("smsbridge_store_group_submissions", "Submissions those transactions held",
                                   labels=["group"])
        for group, (n_tx, n_subs) in (("accept", self.store.accept_groups), ("record", self.store.record_groups)):
            tx.add_metric([group], n_tx)
            subs.add_metric([group], n_subs)
        yield tx
        yield subs
        events = CounterMetricFamily(
            "smsbridge_send_events", "Send-path events (this process): handed_over (a sync send moved to the "
            "queue after an upstream failure), unknown (no answer: reconciled by a resend with the same ids), "
            "reconciled (a resend the upstream refused as a duplicate: it had the message), retried (queued messages "
            "put back after a failed upstream attempt), settle_failed (a sync answer the store could not record: "
            "reconciled later), failed_over (messages moved to the next upstream after one that certainly did not take them failed), "
            "expired (queued past its validity: EXPIRED, not sent), queue_full (destinations refused 429 by "
            "limits.max_waiting)", labels=["event"])
        counts = dict(self.store.events)
        for event in ("handed_over", "unknown", "reconciled", "retried", "settle_failed", "failed_over", "expired",
                      "queue_full"):
            events.add_metric([event], counts.get(event, 0))
        yield events


class QueueCollector(Collector):
    """Messages waiting (queued, leased, or unknown awaiting reconciliation) per caller, and the oldest's age."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("smsbridge_queue_depth", "Messages waiting to be forwarded or reconciled, "
                                  "per caller", labels=["caller"])
        age = GaugeMetricFamily("smsbridge_queue_oldest_age_seconds", "Age of the oldest waiting message, "
                                "per caller", labels=["caller"])
        for caller, n, oldest in self.store.waiting_by_caller():
            depth.add_metric([caller], n)
            age.add_metric([caller], oldest)
        yield depth
        yield age


class UpstreamsCollector(Collector):
    """Each upstream's circuit (failover): its state, consecutive failures and transitions."""

    def __init__(self, upstreams: Upstreams) -> None:
        self.upstreams = upstreams

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily("smsbridge_upstream_circuit_state", "1 for the state each upstream's circuit "
                                  "is in (closed: sends go there; open: failing, skipped; half_open: probing)",
                                  labels=["upstream", "state"])
        failures = GaugeMetricFamily("smsbridge_upstream_consecutive_failures", "Failures in a row, per upstream",
                                     labels=["upstream"])
        moves = CounterMetricFamily("smsbridge_upstream_circuit_transitions", "Circuit state changes (this "
                                    "process), by the state entered", labels=["upstream", "state"])
        order = GaugeMetricFamily("smsbridge_upstream_priority", "Failover order (0: the primary)",
                                  labels=["upstream"])
        for i, r in enumerate(self.upstreams.routes):
            b = r.breaker
            for s in STATES:
                state.add_metric([r.name, s], 1.0 if b.state == s else 0.0)
                moves.add_metric([r.name, s], b.transitions.get(s, 0))
            failures.add_metric([r.name], b.failures)
            order.add_metric([r.name], i)
        yield state
        yield failures
        yield moves
        yield order


class ThrottleCollector(Collector):
    """Failed logins and the attempts refused while locked, by kind (api, ui)."""

    def __init__(self, throttle: LoginThrottle) -> None:
        self.throttle = throttle

    def collect(self) -> Iterator[Metric]:
        failed = CounterMetricFamily("smsbridge_auth_failures", "Failed logins (wrong name, password or key)",
                                     labels=["kind"])
        refused = CounterMetricFamily("smsbridge_auth_throttled", "Logins refused unchecked while locked (429)",
                                      labels=["kind"])
        for kind in ("api", "ui"):
            failed.add_metric([kind], self.throttle.failures_total.get(kind, 0))
            refused.add_metric([kind], self.throttle.refused_total.get(kind, 0))
        yield failed
        yield refused


class IdempotencyCollector(Collector):
    """Retries answered from the first request's stored answer, and requests refused by a key."""

    def __init__(self, idem: Idempotency) -> None:
        self.idem = idem

    def collect(self) -> Iterator[Metric]:
        replays = CounterMetricFamily("smsbridge_idempotent_replays", "Requests answered with the first request's "
                                      "answer, nothing sent (kind: key = Idempotency-Key, dedupe = duplicate "
                                      "within dedupe_window)", labels=["kind"])
        refused = CounterMetricFamily("smsbridge_idempotency_refused", "Requests or destinations refused: conflict "
                                      "(409, key in flight), mismatch (422, key reused for other content), "
                                      "duplicate_message_id (per destination)", labels=["reason"])
        for kind in ("key", "dedupe"):
            replays.add_metric([kind], self.idem.replays.get(kind, 0))
        for reason in ("conflict", "mismatch", "duplicate_message_id"):
            refused.add_metric([reason], self.idem.refused.get(reason, 0))
        yield replays
        yield refused


class RejectedCollector(Collector):
    """Report and inbound pushes that could not be parsed and are kept (answered 200, not processed)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        kept = GaugeMetricFamily("smsbridge_rejected_pushes", "Unparseable pushes kept for inspection "
                                 "(python app.py rejected), by kind", labels=["kind"])
        found = rejected.counts(self.db)
        for kind in ("report", "inbound"):
            kept.add_metric([kind], found.get(kind, 0))
        yield kept


class ClusterCollector(Collector):
    """The store's side of running several bridges (PostgreSQL): the pool, the LISTEN connection, and how
    often the cluster's periodic work ran."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        if not self.db.pooled:
            return
        open_, free = self.db.pool_counts()
        pool = GaugeMetricFamily("smsbridge_store_pool_connections", "PostgreSQL connections of this process's "
                                 "pool, by state", labels=["state"])
        pool.add_metric(["in_use"], open_ - free)
        pool.add_metric(["free"], free)
        yield pool
        listener = self.db.listener
        yield GaugeMetricFamily("smsbridge_store_listener_connected", "1 while this process LISTENs for "
                                "NOTIFY wake-ups", value=int(listener is not None and listener.connected.is_set()))
        yield CounterMetricFamily("smsbridge_store_notifications", "NOTIFY wake-ups this process heard",
                                  value=listener.heard if listener is not None else 0)
        yield GaugeMetricFamily("smsbridge_prune_runs", "Prune runs of the whole cluster (once per interval)",
                                value=periodic.runs(self.db, "prune"))


class PaceCollector(Collector):
    """Traffic control (gateway/send/pacing.py): each bucket's rate and use,
    the upstream's 429 pause. Read from the store: the same in every process."""

    def __init__(self, pacer: Pacer) -> None:
        self.pacer = pacer

    def collect(self) -> Iterator[Metric]:
        now = self.pacer.clock.now()  # each caller's waiting messages: smsbridge_queue_depth (QueueCollector)
        rate = GaugeMetricFamily("smsbridge_pace_rate", "Configured rate (messages per second), by bucket "
                                 "(upstream, caller:<name>, template:<name>)", labels=["bucket"])
        burst = GaugeMetricFamily("smsbridge_pace_burst", "Configured burst, by bucket", labels=["bucket"])
        tokens = GaugeMetricFamily("smsbridge_pace_tokens", "Tokens in the bucket now", labels=["bucket"])
        taken = CounterMetricFamily("smsbridge_paced", "Messages let through by the bucket (all processes)",
                                    labels=["bucket"])
        for b in self.pacer.state():
            rate.add_metric([b["key"]], b["rate"].per_second)
            burst.add_metric([b["key"]], b["rate"].burst)
            tokens.add_metric([b["key"]], b["tokens"])
            taken.add_metric([b["key"]], b["taken"])
        until = self.pacer.paused_until()
        yield from (rate, burst, tokens, taken)
        yield GaugeMetricFamily("smsbridge_upstream_paused_seconds", "Seconds every queue worker still waits "
                                "after the upstream's 429 (Retry-After)", value=max(0.0, (until or now) - now))


class Metrics:
    """The bridge's metrics; ``observe_send`` is registered as a Sender observer."""

    def __init__(self, outbox: Outbox | None = None, store: Store | None = None,
                 throttle: LoginThrottle | None = None, idempotency: Idempotency | None = None,
                 db: Database | None = None, upstreams: Upstreams | None = None, pacer: Pacer | None = None):
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, open fds…
        self.http_latency = Histogram("smsbridge_http_request_seconds", "HTTP request duration, by entrance "
                                      "(blueprint) and status class", ["entrance", "status_class"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.carried = Counter("smsbridge_upstream_messages_sent", "Messages answered by each upstream (which "
                               "upstream carried them)", ["upstream"], registry=r)
        self.requests = Counter("smsbridge_requests", "HTTP requests by entrance and outcome",
                                ["entrance", "outcome"], registry=r)
        self.messages = Counter("smsbridge_messages_sent", "Messages (one per destination) answered by the upstream",
                                registry=r)
        self.parts = Counter("smsbridge_sms_parts_sent", "SMS parts of those messages (the bridge's own count)", registry=r)
        self.upstream_latency = Histogram("smsbridge_upstream_request_seconds", "Upstream call duration",
                                          ["api", "upstream"], buckets=LATENCY_BUCKETS, registry=r)
        self.upstream_errors = Counter("smsbridge_upstream_errors", "Upstream calls that failed (sync sends and "
                                       "queue workers)", ["api", "reason", "upstream"], registry=r)
        if outbox is not None:
            r.register(OutboxCollector(outbox))
        if store is not None:
            r.register(StoreCollector(store))
            r.register(QueueCollector(store))
        if upstreams is not None:
            r.register(UpstreamsCollector(upstreams))
        if throttle is not None:
            r.register(ThrottleCollector(throttle))
        if idempotency is not None:
            r.register(IdempotencyCollector(idempotency))
        if db is not None:
            r.register(RejectedCollector(db))
            r.register(ClusterCollector(db))
        if pacer is not None:
            r.register(PaceCollector(pacer))

    def observe_request(self, entrance: str, status: int, seconds: float | None = None) -> None:
        self.requests.labels(entrance, outcome_of(status)).inc()
        if seconds is not None:
            self.http_latency.labels(entrance, f"{status // 100}xx").observe(seconds)

    def observe_send(self, sub: Submission, result: SubmissionResult | None, attempts: list[Attempt]) -> None:
        for a in attempts:
            self.upstream_latency.labels(a.api, a.upstream or "").observe(a.duration_ms / 1000.0)
            if a.error or a.http_status is None or a.http_status >= 400:
                self.upstream_errors.labels(a.api, a.error or f"http {a.http_status}", a.upstream or "").inc()
        if result is not None:
            self.messages.inc(len(result.messages))
            if attempts and attempts[-1].upstream:
                self.carried.labels(attempts[-1].upstream).inc(len(result.messages))
            self.parts.inc(sum(m.sms_count or 0 for m in result.messages))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ReplyLoopCollector(Collector):
    """Auto-replies not sent because they could loop (gateway/inbound/loops.py), by reason."""

    def __init__(self, guard: ReplyGuard) -> None:
        self.guard = guard

    def collect(self) -> Iterator[Metric]:
        c = CounterMetricFamily("smsbridge_inbound_replies_suppressed", "Auto-replies suppressed (this process): "
                                "limit (too many to one number in the window), own_number (to the bridge's own "
                                "numbers)", labels=["reason"])
        for reason in REASONS:
            c.add_metric([reason], self.guard.suppressed.get(reason, 0))
        yield c
