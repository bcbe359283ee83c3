"""Store-and-forward: every send is recorded; ``sync`` forwards now, ``queued`` forwards from workers.

* **sync** - the upstream is called in the request; its answer is recorded (one short transaction)
  and returned. Upstream unreachable -> 503 and the submission is recorded as failed, never accepted.
* **queued** - the submission is committed first (every destination a ``queued`` message with a
  bridge-assigned messageId, and a bulkId when there are several), then answered PENDING_ACCEPTED at
  once. :class:`QueueWorker` threads lease the oldest due messages, up to ``queue.max_batch``
  destinations per advanced-API request (across submissions: many small sends share one request), passing
  the bridge's ids as the custom ``messageId`` (and ``bulkId`` when the batch is one submission's).
  Unreachable upstream, 5xx, 429, timeouts: retried with exponential backoff (``queue.retry_base``
  doubling up to ``queue.retry_max``) until the upstream accepts or rejects. After a crash, leased
  messages are due again at start-up; a resend is harmless because the upstream answers a repeated
  messageId with REJECTED_DUPLICATE_MESSAGE_ID, which the bridge reads as "already accepted".

In both modes the upstream gets the bridge's own ``notifyUrl`` (``{public_url}/hooks/dlr/<token>``,
one unguessable token per submission); the caller's notifyUrl/notifyContentType/callbackData stay in
the record and are used by gateway/relay.py.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..clock import Clock, parse_time, scaled
from ..config import Caller, Config, TemplateSpec
from ..delivery.urlpolicy import HostUnresolvable, UrlNotAllowed, UrlPolicy
from ..errors import (
    BridgeError,
    QueueFull,
    Unavailable,
    UpstreamError,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnreachable,
    ValidationFailed,
)
from ..ids import new_id, new_ids, new_token
from ..model import Message, QueuedMessage, SentMessage, Status, Submission, SubmissionResult
from ..sms import sms_count
from ..store import pace as pace_repo
from ..store.records import Fence, Fenced, MessageRow, Settled, Store, SubmissionRecord
from ..wire.queued import advanced_batch, decode_specs, encode_spec, options, submission_options
from ..wire.statuses import PENDING_ACCEPTED, STATUS_BY_NAME
from .apis import carrying_api
from .pacing import Pacer
from .sender import Sender
from .upstream import Attempt
from .upstreams import Route, is_failure, not_taken
from .windows import DeliveryWindow

log = logging.getLogger(__name__)

DUPLICATE = "REJECTED_DUPLICATE_MESSAGE_ID"
SETTLED, TAKEN, NOT_STORED = "settled", "taken", "not stored"  # what completing a sync record did (_settle)
# After forwarding a batch smaller than queue.max_batch a worker waits this long before the next claim:
# under a stream of small sends each upstream request then carries tens to hundreds of messages instead of
# a few (one HTTP request and two transactions per batch are most of the worker's cost); a message waits
# at most this much longer.
LINGER_SECONDS = 0.02
EXPIRED = STATUS_BY_NAME["EXPIRED_EXPIRED"]
MAX_VALIDITY_MINUTES = 2880  # Infobip's longest validityPeriod (and its default): a longer rest is not sent


# -- traffic control (docs/delivery.md, "Traffic control") ----------------------------------------
def window_of(caller: Caller | None, template: TemplateSpec | None) -> DeliveryWindow | None:
    """The delivery window a send keeps: the template's, else its caller's; none for an urgent template."""
    if template is not None and (template.urgent or template.delivery_window):
        return None if template.urgent else template.delivery_window
    return caller.delivery_window if caller is not None else None


@dataclasses.dataclass
class Plan:
    """What traffic control decided for one submission before it is recorded."""

    expires: list[float | None]  # per message: still queued then, EXPIRED
    hold_until: float | None = None  # a window the upstream cannot carry is closed: queued until then
    queue: bool = False  # a sync send over its rate (or held): accepted into the queue instead


def plan_traffic(sub: Submission, caller: Caller, template: TemplateSpec | None, now: float,
                 default_max_age: float) -> Plan:
    """Delivery window (carried upstream as ``deliveryTimeWindow`` or held) and expiry of each message."""
    window = window_of(caller, template)
    carried = window.upstream(now) if window else None
    plan = Plan([])
    if window is not None and carried is None and not window.is_open(now):
        plan.hold_until, plan.queue = window.next_open(now), True
    max_age = template.max_age if template and template.max_age is not None else caller.max_age
    max_age = default_max_age if max_age is None else max_age
    for m in sub.messages:
        if carried is not None and m.delivery_time_window is None:
            m.delivery_time_window = carried
        ends = [now + max_age] if max_age else []
        if m.validity_period and m.validity_period > 0:
            ends.append(max(now, parse_time(m.send_at) or now) + m.validity_period * 60)
        plan.expires.append(min(ends) if ends else None)
    return plan


class Dispatcher:
    def __init__(self, config: Config, store: Store, sender: Sender, clock: Clock,
                 policy_for: Callable[[str | None], UrlPolicy], public_url: Callable[[], str]) -> None:
        self.config = config
        self.store = store
        self.sender = sender
        self.clock = clock
        self.policy_for = policy_for
        self.public_url = public_url
        self.pacer = Pacer(config, store.db, clock)
        self.wake = threading.Event()
        self.lease_seconds = config.sync_lease  # a sync send in flight is reconciled once it runs out; it may fail over

    def hook_url(self, token: str) -> str:
        return f"{self.public_url().rstrip('/')}/hooks/dlr/{token}"

    @staticmethod
    def mode_of(caller: Caller, template: TemplateSpec | None) -> str:
        return (template.mode if template and template.mode else None) or caller.mode

    def callback_of(self, caller: Caller, template: TemplateSpec | None) -> str | None:
        if template is not None and template.callback is not None:
            return f"template:{template.name}"
        return f"caller:{caller.name}" if caller.callback is not None else None

    def _check_notify_urls(self, sub: Submission, flat: bool) -> None:
        policy = self.policy_for(sub.caller)
        errors: dict[str, list[str]] = {}
        for mi, m in enumerate(sub.messages):
            if not m.notify_url:
                continue
            try:
                policy.check(m.notify_url)
            except HostUnresolvable:
                pass  # may be a DNS hiccup: delivery checks again and retries
            except UrlNotAllowed as exc:
                errors["notifyUrl" if flat else f"messages[{mi}].notifyUrl"] = [
                    f"is not allowed for this caller: {exc.reason}"]
        if errors:
            raise ValidationFailed(errors)

    def send(self, sub: Submission, api: str, caller: Caller, template: TemplateSpec | None = None,
             token: str | None = None, fence: Fence | None = None) -> tuple[SubmissionResult, list[Attempt]]:
        """Record and forward ``sub`` in the caller's (or template's) mode; ``token``: the one to record it under
        (its idempotency key's link to the record, gateway/send/idempotency.py), else a new one; ``fence``: that
        key, which must still be this request's when the record is written (else :class:`Fenced`, nothing sent)."""
        self._check_notify_urls(sub, flat=sub.entrance != "advanced")
        plan = plan_traffic(sub, caller, template, self.clock.now(), self.config.queue.max_age)
        api = carrying_api(sub, api)  # nothing dropped: an API that cannot carry the request in full is not used
        mode = self.mode_of(caller, template)
        # failover: a sync send goes to this upstream (its rows record it before anything is sent), and its
        # rate is the one charged
        route = self.sender.upstreams.pick() if mode == "sync" and not plan.queue else None
        if mode == "sync" and not plan.queue and not self.pacer.admit(sub.caller, sub.entrance, sub.destination_count,
                                                                      route.name if route else None):
            plan.queue = True  # over its rate: a sync send is accepted into the queue, never refused
        if plan.queue or mode == "queued":
            self._check_waiting(caller, sub.destination_count)
            mode = "queued"
        record = SubmissionRecord(sub.caller, sub.entrance, mode, api, sub.bulk_id, token or new_token(),
                                  sub.callback or self.callback_of(caller, template), fence)
        if mode == "queued":
            return self._queue(sub, api, record, plan), []
        failure = (template.on_upstream_failure if template and template.on_upstream_failure else None) \
            or caller.on_upstream_failure
        return self._sync(sub, api, record, failure == "queue", plan, route)

    def _store(self, record: SubmissionRecord, rows: list[MessageRow], sub: Submission, what: str) -> int:
        """Commit ``rows`` durably (fsynced with their group); a row that cannot be stored fails only this
        request: 400 naming the field when the input is at fault, else 503 ("nothing was {what}")."""
        try:
            return self.store.accept(record, rows)  # group commit: returns once fsynced with its group
        except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800") cannot be stored, nor sent
            raise ValidationFailed(unstorable(sub)) from None
        except Fenced:  # its idempotency key was taken over by a retry: nothing kept, nothing may be sent
            raise
        except Exception as exc:  # rolled back, withdrawn or refused (a constraint, a full disk): nothing kept
            log.error("store: a submission of %d could not be stored (%s)", len(rows), type(exc).__name__)
            raise Unavailable(f"The bridge could not store the message; nothing was {what}: retry later") from None

    # -- sync ----------------------------------------------------------------------------------
    # A sync send is recorded (state ``sending``, fsynced) before it is forwarded, with the ids the upstream
    # gets (advanced and v3 carry the bridge's messageId and bulkId) and a lease: if the request dies or its
    # answer cannot be recorded, the queue worker finds the lease run out and resends with the same ids,
    # which the upstream refuses as a duplicate (read as accepted) or accepts (it never got there).
    def _sync(self, sub: Submission, api: str, record: SubmissionRecord,
              hand_over: bool, plan: Plan, route: Route | None) -> tuple[SubmissionResult, list[Attempt]]:
        hook = self.hook_url(record.token)
        ids = api != "query"  # the query API cannot carry custom ids
        if ids and sub.bulk_id is None and sub.destination_count > 1:
            sub.bulk_id = new_id()
        record.bulk_id = sub.bulk_id
        extras = submission_options(sub)
        lease = self.clock.now() + self.lease_seconds if ids else None
        rows: list[MessageRow] = []
        upstream_messages = []
        for m, expires in zip(sub.messages, plan.expires, strict=True):
            spec, send_at = encode_spec(m, hook, extras), parse_time(m.send_at)
            dests = []
            for d in m.destinations:
                upstream_id = (d.message_id or new_id()) if ids else None
                row = self._row(m, d.message_id or upstream_id, upstream_id, spec, None, None, "sending", d.to,
                                send_at)
                row.lease_until, row.upstream, row.expires_at = lease, route.name if route else None, expires
                rows.append(row)
                dests.append(dataclasses.replace(d, message_id=upstream_id) if ids else d)
            upstream_messages.append(dataclasses.replace(m, destinations=dests, notify_url=hook,
                                                         notify_content_type="application/json"))
        sid = self._store(record, rows, sub, "sent")
        try:
            if route is None:
                raise UpstreamUnreachable("Every upstream is failing (circuit open); nothing was sent", [])
            result, attempts = self.sender.send(dataclasses.replace(sub, messages=upstream_messages), api, route,
                                                moving=lambda nxt: self._move(sid, nxt, len(rows)))
        except UpstreamError as exc:
            return self._sync_failed(sub, sid, rows, exc, ids, hand_over)
        except BridgeError as exc:
            self._settle(sid, [Settled("failed", None, r.message_id, r.upstream_message_id) for r in rows],
                         [], error=exc.text, held=lease)
            raise
        outcomes = [Settled("rejected" if sent.status.group_name == "REJECTED" else "sent", sent.status,
                            sent.message_id, sent.upstream_message_id or sent.message_id, sent.sms_count)
                    for sent in result.messages]
        if self._settle(sid, outcomes, attempts, bulk_id=result.bulk_id, upstream_bulk_id=result.bulk_id,
                        upstream=carrier(attempts), held=lease) == NOT_STORED:
            log.error("sync: the answer to submission %d could not be recorded; it is reconciled %s", sid,
                      "when its lease runs out" if ids else "at the next start (as unknown)")
        return result, attempts

    def _move(self, sid: int, route: Route, n: int) -> None:
        """Failover of a sync send: its rows now belong to ``route``, durably, before it is sent there."""
        self.store.repin(sid, route.name)
        self.store.count("failed_over", n)

    def _settle(self, sid: int, outcomes: list[Settled], attempts: list[Attempt], **kw: Any) -> str:
        """Complete a sync record: SETTLED; TAKEN when its rows' lease had run out and they were taken over (a
        retry reconciling the send handed them to the queue, or the queue resent them): the queue settles them,
        whatever this request heard; NOT_STORED (logged, counted) when the store fails: never the caller's error."""
        try:
            return SETTLED if self.store.settle(sid, outcomes, attempts, **kw) else TAKEN
        except Exception as exc:
            log.error("store: submission %d could not be completed (%s)", sid, type(exc).__name__)
            self.store.count("settle_failed")
            return NOT_STORED

    def _sync_failed(self, sub: Submission, sid: int, rows: list[MessageRow], exc: UpstreamError, ids: bool,
                     hand_over: bool) -> tuple[SubmissionResult, list[Attempt]]:
        """The upstream failed a sync send (see docs/delivery.md, "When the upstream hiccups")."""
        attempts = exc.attempts
        held = rows[0].lease_until if rows else None  # the lease the rows were recorded with (see _settle)
        last = carrier(attempts)  # the upstream tried last (any before it certainly took nothing)
        now = self.clock.now()
        retry_at = now + scaled(self.config.queue.retry_base, self.config.queue.time_scale)
        retryable = isinstance(exc, UpstreamUnreachable) or (
            isinstance(exc, UpstreamRefused) and (exc.status == 429 or exc.status >= 500))
        answered = any(a.http_status is not None and 200 <= a.http_status < 300 for a in attempts)
        if isinstance(exc, UpstreamRefused) and exc.status == 429:  # every worker waits with this send
            retry_at = max(retry_at, self.pacer.pause(exc.retry_after))
        if retryable and (ids or not answered) and hand_over:  # nothing was accepted: the queue sends it
            if not ids:  # the worker sends with the advanced API: the bridge's own ids from now on
                for r, upstream_id in zip(rows, new_ids(len(rows)), strict=True):
                    r.message_id, r.upstream_message_id = r.message_id or upstream_id, upstream_id
                if sub.bulk_id is None and len(rows) > 1:
                    sub.bulk_id = new_id()
            outcomes = [Settled("queued", PENDING_ACCEPTED, r.message_id, r.upstream_message_id) for r in rows]
            if self._settle(sid, outcomes, attempts, error=exc.text, next_at=retry_at, durable=True,
                            bulk_id=sub.bulk_id, upstream=None, held=held) != NOT_STORED or ids:  # free to fail over
                self.store.count("handed_over", len(rows))
                log.warning("sync: upstream failed (%s); %d message(s) handed over to the queue", exc.text, len(rows))
                self._wake()
                return self._pending(sub, rows), attempts
            raise exc
        if (retryable or isinstance(exc, UpstreamRefused)) and not answered:  # nothing was accepted: final
            if self._settle(sid, [Settled("failed", None, r.message_id, r.upstream_message_id) for r in rows],
                            attempts, error=exc.text, upstream=last, held=held) == TAKEN:
                return self._pending(sub, rows), attempts  # its lease ran out first: the queue sends it (same ids)
            raise exc
        # A timeout, a dropped connection or an unreadable answer: the upstream may hold the message. With
        # ids, a resend with the same ids after retry_base settles it (a duplicate refusal means accepted);
        # the query API carries none: the row stays unknown (docs/delivery.md).
        self.store.count("unknown", len(rows))
        self._settle(sid, [Settled("unknown", None, r.message_id, r.upstream_message_id) for r in rows], attempts,
                     error=exc.text, lease_until=retry_at if ids else None, durable=True, upstream=last, held=held)
        if ids and hand_over:
            self._wake()
            return self._pending(sub, rows), attempts
        raise exc

    def _pending(self, sub: Submission, rows: list[MessageRow]) -> SubmissionResult:
        """PENDING_ACCEPTED for every destination of ``rows``: the queue has them."""
        result = SubmissionResult(bulk_id=sub.bulk_id)
        i = 0
        for m in sub.messages:
            count = sms_count(m.text, m.language_code, m.transliteration)
            for _ in m.destinations:
                result.messages.append(SentMessage(rows[i].to, PENDING_ACCEPTED, rows[i].message_id, count))
                i += 1
        return result

    def _wake(self) -> None:
        if not self.wake.is_set():  # Event.set notifies even when set: skip it while a wake is pending
            self.wake.set()

    @staticmethod
    def _row(m: Message, message_id: str | None, upstream_id: str | None, spec: str, count: int | None,
             status: Status | None, state: str, to: str, send_at: float | None) -> MessageRow:
        """One destination's row; ``send_at`` is ``parse_time(m.send_at)``, worked out once per message."""
        return MessageRow(message_id, upstream_id, to, m.sender, m.text, spec, m.notify_url,
                          m.notify_content_type, m.callback_data, m.intermediate_report, count, status, state,
                          m.entity_id, m.application_id, m.campaign_reference_id, send_at)

    # -- queued --------------------------------------------------------------------------------
    def _check_waiting(self, caller: Caller, n: int) -> None:
        """``limits.max_waiting``: a send that would queue more than that for the caller is refused, 429 with
        Retry-After (about how long the queue needs to make room at the caller's rate). Counted before the
        write: concurrent sends may pass it together by a few."""
        if not caller.max_waiting:
            return
        waiting = pace_repo.waiting(self.store.db, caller.name)
        if waiting + n <= caller.max_waiting:
            return
        rate = caller.rate or self.config.upstream.rate
        after = (waiting + n - caller.max_waiting) / rate.per_second if rate else self.config.queue.retry_base
        self.store.count("queue_full", n)
        raise QueueFull(f"Too many messages waiting for this caller ({waiting} of limits.max_waiting "
                        f"{caller.max_waiting}); nothing was accepted: retry later", max(1.0, after))

    def _queue(self, sub: Submission, api: str, record: SubmissionRecord, plan: Plan) -> SubmissionResult:
        if sub.bulk_id is None and sub.destination_count > 1:
            sub.bulk_id = new_id()
        record.bulk_id = sub.bulk_id
        hook = self.hook_url(record.token)
        extras = submission_options(sub)
        result = SubmissionResult(bulk_id=sub.bulk_id)
        rows: list[MessageRow] = []
        for m, expires in zip(sub.messages, plan.expires, strict=True):  # per message: spec, smsCount, sendAt
            spec = encode_spec(m, hook, extras)
            count = sms_count(m.text, m.language_code, m.transliteration)
            send_at = parse_time(m.send_at)
            for d, upstream_id in zip(m.destinations, new_ids(len(m.destinations)), strict=True):
                mid = d.message_id or upstream_id
                row = self._row(m, mid, upstream_id, spec, count, PENDING_ACCEPTED, "queued", d.to, send_at)
                row.expires_at, row.not_before = expires, plan.hold_until
                rows.append(row)
                result.messages.append(SentMessage(d.to, PENDING_ACCEPTED, mid, count))
        self._store(record, rows, sub, "accepted")
        self._wake()
        return result


def carrier(attempts: list[Attempt]) -> str | None:
    """The upstream the last attempt went to (failover: the one that carried the message or may hold it)."""
    return attempts[-1].upstream if attempts else None


_FIELDS = (("to", "to"), ("message_id", "messageId"), ("sender", "from"), ("text", "text"),
           ("notify_url", "notifyUrl"), ("callback_data", "callbackData"), ("entity_id", "entityId"),
           ("application_id", "applicationId"), ("campaign_reference_id", "campaignReferenceId"))


def _encodable(value: Any) -> bool:
    if not isinstance(value, str) or value.isascii():
        return True
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def unstorable(sub: Submission) -> dict[str, list[str]]:
    """The fields of ``sub`` holding a string that cannot be stored as UTF-8 (a lone surrogate)."""
    flat = sub.entrance != "advanced"
    reason = ["contains a character that is not valid Unicode (a lone surrogate such as \\ud800)"]
    errors: dict[str, list[str]] = {}
    for mi, m in enumerate(sub.messages):
        prefix = "" if flat else f"messages[{mi}]."
        for attr, name in _FIELDS:
            if attr in ("to", "message_id"):
                for di, d in enumerate(m.destinations):
                    if not _encodable(getattr(d, attr)):
                        errors[name if flat else f"{prefix}destinations[{di}].{name}"] = reason
            elif not _encodable(getattr(m, attr, None)):
                errors[prefix + name] = reason
    return errors or {"request": reason}


class QueueWorker:
    """Threads that forward queued messages in batches (see the module docstring)."""

    def __init__(self, config: Config, store: Store, sender: Sender, clock: Clock, wake: threading.Event,
                 on_rejected: Callable[[list[int]], None] | None = None,
                 on_accepted: Callable[[list[int]], None] | None = None) -> None:
        q = config.queue
        self.config = config
        self.pacer = Pacer(config, store.db, clock)
        self.store, self.sender, self.clock = store, sender, clock
        self.workers, self.max_batch = q.workers, q.max_batch
        self.retry_base, self.retry_max, self.time_scale = q.retry_base, q.retry_max, q.time_scale
        self.lease_seconds = config.upstream_lease  # real seconds: the slowest upstream's limit + store.lease_margin
        self.on_rejected = on_rejected
        self.poll_interval = config.store.poll_interval  # idle: look again at least this often (NOTIFY wakes sooner)
        self.on_accepted = on_accepted  # rows the upstream accepted (Kannel's DLR event 8)
        self._wake = wake
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    requeue_at_start = True  # False in a --workers child: the parent requeued once; siblings' leases are live

    def start(self) -> None:
        if self._threads:
            return
        n = self.store.requeue_inflight(self.lease_seconds) if self.requeue_at_start else 0
        if n:
            log.info("queue: %d message(s) leased before a restart are due again", n)
        self._stop.clear()
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, name=f"queue-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                n = self.run_once()
                if n:
                    if n < self.max_batch:  # a short batch: let the burst gather so the next one is bigger
                        self._stop.wait(LINGER_SECONDS)
                    continue
                due = self.store.next_due()
                poll = self.poll_interval
                wait = poll if due is None else min(poll, max(0.005, due - self.clock.now()))
            except Exception:  # keep the worker alive; leases bring messages back
                log.exception("queue worker error")
                wait = 1.0
            self.store.db.release()  # idle: its connection back to the pool
            self._wake.wait(wait)

    def backoff(self, tries: int) -> float:
        """Clock seconds before retry ``tries`` (1-based): base·2^(tries-1), capped, time-scaled."""
        return scaled(min(self.retry_max, self.retry_base * 2 ** max(0, tries - 1)), self.time_scale)

    def run_once(self) -> int:
        """Forward one batch; return the number of messages it held (0: nothing due).

        Cheap by design (it shares the GIL with the request threads): each distinct stored spec is
        parsed once, the body is built in wire form straight from the specs (no canonical round trip)
        and encoded once, and the store updates the batch with a few set-based statements."""
        ups = self.sender.upstreams
        route = ups.pick()  # failover: the first healthy upstream; free rows are pinned to it as they are claimed
        rows = self.store.claim_batch(self.max_batch, self.lease_seconds, route.name if route else None,
                                      durable=len(ups.routes) > 1)
        if not rows:
            return 0
        claimed = len(rows)
        rows = self._traffic(rows, route.name if route else None)
        if not rows:
            return claimed
        specs = decode_specs(r.spec for r in rows)
        first = options(specs[rows[0].spec])
        same = [r for r in rows if options(specs[r.spec]) == first]
        if len(same) < len(rows):  # submission-level options differ: those wait for a batch of their own
            later = [r for r in rows if options(specs[r.spec]) != first]
            self.store.release([r.row_id for r in later], unpin=[r.row_id for r in later if r.upstream is None])
            rows = same
        # each row goes where it is pinned (that upstream may hold it: only it can say), a free one to ``route``
        groups: dict[str | None, list[QueuedMessage]] = {}
        for r in rows:
            if r.upstream is not None and r.upstream not in ups.by_name:  # an upstream no longer configured
                log.warning("queue: message row %d was pinned to upstream %r, which is no longer configured",
                            r.row_id, r.upstream)
                if route is not None:
                    self.store.pin([r.row_id], route.name)
                r = dataclasses.replace(r, upstream=None)
            groups.setdefault(r.upstream or (route.name if route else None), []).append(r)
        for target, group in groups.items():
            dest = ups.by_name.get(target) if target else None
            if dest is not None and (dest is route or ups.available(dest)):
                self._forward(group, specs, dest)
            else:
                self._park(group, dest)
        return claimed

    # -- traffic control (docs/delivery.md, "Traffic control") --------------------------------------
    def _traffic(self, rows: list[QueuedMessage], route: str | None = None) -> list[QueuedMessage]:
        """Of the claimed rows, those that leave now: expired ones become EXPIRED (reported to the caller),
        ones held by a closed delivery window or over their rate (or during an upstream 429 pause) go back
        to the queue, due when their turn comes (never later than their expiry)."""
        now = self.clock.now()
        expired = [r for r in rows if r.state == "queued" and r.expires_at is not None and r.expires_at <= now]
        if expired:
            done = pace_repo.expire(self.store.db, [r.row_id for r in expired], EXPIRED,
                                    "expired while waiting in the queue", now)
            if done:
                self.store.count("expired", len(done))
                log.warning("queue: %d message(s) expired before they could be sent", len(done))
                if self.on_rejected:  # a final report of its own, like a rejected one
                    self.on_rejected(done)
            gone = {r.row_id for r in expired}
            rows = [r for r in rows if r.row_id not in gone]
        later: list[tuple[QueuedMessage, float]] = []
        go = []
        for r in rows:
            window = self._window(r)
            if window is not None and window.upstream(now) is None and not window.is_open(now):
                later.append((r, window.next_open(now)))
            else:
                go.append(r)
        if go and self.pacer.enabled:
            go, paced = self.pacer.gate(go, route)
            later += paced
        elif go and (until := self.pacer.paused_until()) is not None:
            later += [(r, until) for r in go]
            go = []
        self._defer(later)
        return go

    def _defer(self, later: list[tuple[QueuedMessage, float]]) -> None:
        """Claimed rows back to the queue, each due at its time (or its expiry); those this claim pinned to an
        upstream (free before it) are free again, since they were sent nowhere."""
        if not later:
            return
        pace_repo.defer(self.store.db, [(r.row_id, r.state, self._due(r, at)) for r, at in later])
        free = [r.row_id for r, _ in later if r.upstream is None]
        if free:
            self.store.release([], unpin=free)

    def _window(self, r: QueuedMessage) -> DeliveryWindow | None:
        template = self.config.templates.get(r.entrance[9:]) if r.entrance.startswith("template:") else None
        return window_of(self.config.callers.get(r.caller or ""), template)

    @staticmethod
    def _due(r: QueuedMessage, at: float) -> float:
        """``at``, or the row's expiry when sooner (it is then expired, not sent late)."""
        return min(at, r.expires_at) if r.state == "queued" and r.expires_at is not None else at

    def _park(self, rows: list[QueuedMessage], dest: Route | None) -> None:
        """Rows whose upstream's circuit is open wait for its next probe (no try counted)."""
        ups = self.sender.upstreams
        at = max(dest.breaker.retry_at() if dest else ups.next_retry(), self.clock.now() + self.backoff(1))
        reason = (f"upstream {dest.name} is failing (circuit open): the message waits for it, which may hold it"
                  if dest else "every upstream is failing (circuit open)")
        self.store.release([r.row_id for r in rows], at, reason)

    def _forward(self, rows: list[QueuedMessage], specs: dict[str, dict[str, Any]], route: Route,
                 tried: tuple[str, ...] = ()) -> None:
        # a batch mixing submissions leaves the bulkId to the upstream; the caller's stays in the record and reports
        one_bulk = rows[0].bulk_id if len({r.bulk_id for r in rows}) == 1 else None
        now = self.clock.now()
        # what is left of a message's validity goes upstream: it does not deliver it later than that either
        left = {r.spec: max(1, int((r.expires_at - now) // 60)) for r in rows
                if r.expires_at is not None and r.expires_at - now < MAX_VALIDITY_MINUTES * 60}
        body = advanced_batch([(r.spec, r.to, r.upstream_message_id) for r in rows], specs, one_bulk, left)
        batch = uuid.uuid4().hex[:16]
        attempts: list[Attempt] = []
        ups = self.sender.upstreams
        try:
            result = route.client.post_advanced(body, attempts)  # body in wire form: no canonical round trip
        except UpstreamError as exc:
            ups.record(route, exc)
            self.sender.observe(attempts, None)
            attempt = attempts[-1] if attempts else Attempt("advanced", None, 0.0, exc.text, route.name)
            if isinstance(exc, UpstreamRefused) and exc.status == 400 and len(rows) > 1:
                # refused as a whole (nothing of it was sent): halve it until only the offending message is
                # refused, never its neighbours; the refused attempt stays on the record
                self.store.batch_failed(batch, attempt, len(rows), [])
                half = len(rows) // 2
                self._forward(rows[:half], specs, route, tried)
                self._forward(rows[half:], specs, route, tried)
                return
            if isinstance(exc, UpstreamRefused) and exc.status == 400:  # the upstream refused the request: final
                status = STATUS_BY_NAME["REJECTED_SYSTEM_ERROR"]
                rejected = [(r.row_id, "rejected", status, None) for r in rows]
                self.store.batch_answered(batch, rejected, None, attempt, len(rows))
                log.warning("queue: upstream rejected a batch of %d: %s", len(rows), exc.text)
                if self.on_rejected:
                    self.on_rejected([r.row_id for r in rows])
                return
            # failover: rows this claim pinned here (free before it) that this upstream certainly did not take
            # may move on; rows that were pinned here before (it may hold them) wait for it
            free = [r for r in rows if r.upstream is None] if not_taken(exc) else []
            nxt = ups.pick(exclude=(*tried, route.name)) if free and is_failure(exc) else None
            moved = [] if nxt is None else free
            gone = {r.row_id for r in moved}
            if isinstance(exc, UpstreamRefused) and exc.status == 429:  # every worker, every process waits
                until = self.pacer.pause(exc.retry_after)
                retry = [(r.row_id, self._due(r, until), exc.text) for r in rows if r.row_id not in gone]
            else:
                retry = [(r.row_id, self._due(r, now + self.backoff(r.tries + 1)), exc.text) for r in rows
                         if r.row_id not in gone]
            if isinstance(exc, UpstreamTimeout):  # the upstream may hold them: reconciled, never expired
                pace_repo.unexpirable(self.store.db, [r.row_id for r in rows])
            self.store.batch_failed(batch, attempt, len(rows), retry,
                                    unpin=[r.row_id for r in free if r.row_id not in gone])
            if retry:
                self.store.count("retried", len(retry))
                log.warning("queue: batch of %d not accepted by upstream %s (%s); retrying", len(retry), route.name,
                            exc.text)
            if nxt is not None and self.pacer.enabled:  # the next upstream's own pace holds for what moves there
                moved, paced = self.pacer.gate(moved, nxt.name)
                self._defer(paced)
            if nxt is not None and moved:
                self.store.pin([r.row_id for r in moved], nxt.name)  # durably, before anything goes there
                self.store.count("failed_over", len(moved))
                log.warning("queue: upstream %s failed (%s): %d message(s) fail over to %s", route.name, exc.text,
                            len(moved), nxt.name)
                self._forward(moved, specs, nxt, (*tried, route.name))
            return
        ups.record(route, None)
        self.sender.observe(attempts, result)
        answered = {m.message_id: m for m in result.messages if m.message_id}
        outcomes, retry, rejected_ids = [], [], []
        for r in rows:
            sent = answered.get(r.upstream_message_id)
            if sent is None:
                retry.append((r.row_id, self._due(r, now + self.backoff(r.tries + 1)), "missing from the upstream's answer"))
            elif sent.status.name == DUPLICATE:  # accepted by an earlier attempt whose answer was lost
                outcomes.append((r.row_id, "sent", PENDING_ACCEPTED, sent.sms_count))
                self.store.count("reconciled")
            elif sent.status.group_name == "REJECTED":
                outcomes.append((r.row_id, "rejected", sent.status, sent.sms_count))
                rejected_ids.append(r.row_id)
            else:
                outcomes.append((r.row_id, "sent", sent.status, sent.sms_count))
        self.store.batch_answered(batch, outcomes, result.bulk_id, attempts[-1], len(rows), retry)
        if rejected_ids and self.on_rejected:
            self.on_rejected(rejected_ids)
        # acceptance events exist only for messages with a report channel of their own (Kannel's 8, Jasmin's
        # level 1): a batch without one asks the store nothing
        channelled = {r.row_id for r in rows if r.callback}
        accepted = [o[0] for o in outcomes if o[1] == "sent" and o[0] in channelled]
        if accepted and self.on_accepted:
            try:
                self.on_accepted(accepted)
            except Exception:  # the sends are recorded: only their accept events are lost
                log.exception("queue: accept events of a batch could not be queued")
