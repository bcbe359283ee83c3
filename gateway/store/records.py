"""The durable record: submissions, messages (one row per destination), upstream attempts, status
changes and delivery reports (tables: gateway/store/schema.py).

Everything the rest of the bridge needs from storage goes through :class:`Store`; statements are SQLAlchemy
Core (built once, at import: SQLAlchemy's compiled cache then serves every call), so one implementation serves
SQLite and PostgreSQL. Ids of a group's submissions are assigned under the write lock, not read back.

A *message row* carries two ids: ``message_id`` (what the caller was given and sees in reports and
logs) and ``upstream_message_id`` (what the upstream knows; reports arrive with it). In queued mode
the bridge assigns ``upstream_message_id`` before sending and passes it as the custom id, so a resend
after a crash is recognised by the upstream as a duplicate.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Double,
    Text,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from ..clock import Clock
from ..model import QueuedMessage, Status
from ..send.upstream import Attempt
from . import pace
from .engine import Connection, Database, GroupCommit, Prepared
from .notify import QUEUE, notify
from .schema import idempotency as K
from .schema import messages as M
from .schema import outbox_attempts, outbox_jobs, reports, status_changes, submissions, upstream_attempts

FINAL_GROUPS = frozenset({"DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED"})
OPEN_STATES = ("queued", "sending")
_CHUNK = 500  # ids per ``IN (...)``: well under SQLite's (and PostgreSQL's) parameter limits
_NO_STATUS = (None,) * 5
_STATUS_COLS = ("status_group_id", "status_group_name", "status_id", "status_name", "status_description")


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


_IDS = bindparam("ids", expanding=True)

# -- the hot statements: Core, built once; run pre-compiled on SQLite (engine.Prepared) -------------------
_SUBMISSION_KEYS = ["id", "caller", "entrance", "mode", "api", "bulk_id", "dlr_token", "destinations", "created_at",
                    "updated_at"]
_MESSAGE_KEYS = ["submission_id", "caller", "entrance", "mode", "state", "message_id", "bulk_id",
                 "upstream_message_id", "to_addr", "sender", "text", "spec", "notify_url",
                 "notify_content_type", "callback_data", "intermediate", "callback", "sms_count", *_STATUS_COLS,
                 "sent_at", "next_at", "lease_until", "created_at", "updated_at", "entity_id", "application_id",
                 "campaign_reference_id", "send_at", "upstream", "expires_at"]
_ATTEMPT_KEYS = ["submission_id", "batch", "api", "destinations", "at", "http_status", "duration_ms", "error"]
_NEXT_SUBMISSION = Prepared(select(func.coalesce(func.max(submissions.c.id), 0)))
_INSERT_SUBMISSION = Prepared(insert(submissions), keys=_SUBMISSION_KEYS)
_INSERT_MESSAGE = Prepared(insert(M), keys=_MESSAGE_KEYS)
_INSERT_ATTEMPT = Prepared(insert(upstream_attempts), keys=_ATTEMPT_KEYS)
_FIRST_CHANGES = Prepared(insert(status_changes).from_select(
    ["message_row", "at", "source", "status_name", "group_name", "detail"],
    select(M.c.id, M.c.created_at, case((M.c.mode == "queued", literal("queue")), else_=literal("answer")),
           M.c.status_name, M.c.status_group_name, M.c.state)
    .where(M.c.submission_id.between(bindparam("lo"), bindparam("hi")))))
# PostgreSQL (no process-wide write lock, several processes): ids come from the sequence, read back in order
_RETURNING_SUBMISSIONS = insert(submissions).returning(submissions.c.id, sort_by_parameter_order=True)
_FIRST_CHANGES_OF = insert(status_changes).from_select(
    ["message_row", "at", "source", "status_name", "group_name", "detail"],
    select(M.c.id, M.c.created_at, case((M.c.mode == "queued", literal("queue")), else_=literal("answer")),
           M.c.status_name, M.c.status_group_name, M.c.state)
    .where(M.c.submission_id.in_(bindparam("sids", expanding=True))))
_CLAIM_COLS = (M.c.id, M.c.spec, M.c.to_addr, M.c.upstream_message_id, M.c.bulk_id, M.c.tries, M.c.upstream, M.c.state,
               M.c.caller, M.c.entrance, M.c.expires_at, M.c.callback)  # QueuedMessage's fields, in order
_CLAIM_DUE = Prepared(select(*_CLAIM_COLS).where(M.c.state == "queued", M.c.next_at <= bindparam("now"))
                      .order_by(M.c.next_at, M.c.id).limit(bindparam("n")))
# A lease that ran out: a worker (or a sync request) died mid-request, or a sync send whose outcome is unknown
# (timeout) or whose completion could not be written is due for reconciliation - a resend with the same ids.
_CLAIM_EXPIRED = Prepared(select(*_CLAIM_COLS).where(or_(M.c.state == "sending", M.c.state == "unknown"),
                                                     M.c.lease_until <= bindparam("now"))
                          .order_by(M.c.lease_until, M.c.id).limit(bindparam("n")))
# updated_at is left alone (an indexed column: one b-tree move less per row); prune skips leased rows
# failover: a free row is pinned to the upstream it is about to be sent to (``up``) in the same statement, so a
# worker dying mid-request leaves it to be reconciled there, never sent elsewhere (docs/delivery.md)
_LEASE = Prepared(update(M).where(M.c.id.in_(_IDS)).values(
    state="sending", lease_until=bindparam("until"), upstream=func.coalesce(M.c.upstream, bindparam("up", type_=Text()))),
    expanding="ids")
_UNPIN = update(M).where(M.c.id.in_(_IDS)).values(upstream=None)
_PIN = update(M).where(M.c.id.in_(_IDS)).values(upstream=bindparam("up"))
_REPIN = update(M).where(M.c.submission_id == bindparam("sid")).values(upstream=bindparam("up"))
# PostgreSQL: rows another process's open claim holds are skipped, not waited for (nor claimed twice)
_CLAIM_DUE_LOCKED = _CLAIM_DUE.stmt.with_for_update(skip_locked=True)
_CLAIM_EXPIRED_LOCKED = _CLAIM_EXPIRED.stmt.with_for_update(skip_locked=True)
_RELEASE = (update(M).where(M.c.id.in_(_IDS), M.c.state == "sending")
            .values(state="queued", lease_until=None, next_at=bindparam("at"),
                    last_error=func.coalesce(bindparam("reason", type_=Text()), M.c.last_error)))
_REQUEUE = (update(M).where(M.c.state == "sending", M.c.upstream_message_id.is_not(None), M.c.spec != "")
            .values(state="queued", lease_until=None, next_at=bindparam("at")))
# a sync send through the query API (no custom ids) interrupted mid-request: a resend could double it
_ORPHANS = (update(M).where(M.c.state == "sending").values(state="unknown", lease_until=None,
                                                           last_error="interrupted before the upstream answered"))
# not IN (...): a literal list compiles to an expanding parameter, which Prepared statements cannot hold
_FINAL = or_(*(M.c.status_group_name == literal(g) for g in ("DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED")))


def _keep_final(**params: str) -> dict[str, Any]:
    """Status columns set from ``params`` (column -> bind name) unless a final report already arrived: an
    answer that comes after the delivery report (a resend refused as a duplicate, an answer recorded late)
    must not turn DELIVERED back into PENDING."""
    return {col: case((_FINAL, M.c[col]), else_=bindparam(name)) for col, name in params.items()}


_STATUS_PARAMS = dict(zip(_STATUS_COLS, ("gid", "gname", "sid", "sname", "sdesc"), strict=True))
_ANSWERED = Prepared(update(M).where(M.c.id.in_(_IDS)).values(
    state=bindparam("st"), **_keep_final(**_STATUS_PARAMS),
    sms_count=func.coalesce(bindparam("count"), M.c.sms_count), upstream_bulk_id=bindparam("ubulk"),
    sent_at=bindparam("now"), tries=M.c.tries + 1, lease_until=None, last_error=None, updated_at=bindparam("now")),
    expanding="ids")
_ANSWER_CHANGES = Prepared(insert(status_changes).from_select(
    ["message_row", "at", "source", "status_name", "group_name", "detail"],
    select(M.c.id, bindparam("now", type_=Double()), literal("answer"), bindparam("sname", type_=Text()),
           bindparam("gname", type_=Text()), bindparam("st", type_=Text()))
    .where(M.c.id.in_(_IDS))), expanding="ids")
_RETRY = Prepared(update(M).where(M.c.id == bindparam("rid"), M.c.state == "sending")
                  .values(state="queued", tries=M.c.tries + 1, next_at=bindparam("at"), last_error=bindparam("reason"),
                          lease_until=None, updated_at=bindparam("now")))
# open: queued, leased, or unknown awaiting reconciliation (a lease); an unknown row without a lease cannot be
# reconciled (the query API carries no ids) and is finished as far as the queue is concerned
_SETTLE = update(M).where(M.c.id == bindparam("p_rid")).values(
    state=bindparam("p_st"), message_id=bindparam("p_mid"), upstream_message_id=bindparam("p_uid"),
    **_keep_final(**{col: f"p_{name}" for col, name in _STATUS_PARAMS.items()}),
    sms_count=func.coalesce(bindparam("p_count"), M.c.sms_count), bulk_id=func.coalesce(bindparam("p_bulk"), M.c.bulk_id),
    upstream_bulk_id=bindparam("p_ubulk"), next_at=bindparam("p_next"), lease_until=bindparam("p_lease"),
    last_error=bindparam("p_err"), tries=M.c.tries + 1, updated_at=bindparam("p_now"), upstream=bindparam("p_up"))
# a sync send's rows with the lease they hold now: only those still under the lease its request recorded are its to
# settle (a reconciling retry or the queue's resend after that lease took the others: theirs to settle)
_ROW_IDS = select(M.c.id, M.c.lease_until).where(M.c.submission_id == bindparam("sid")).order_by(M.c.id)
_ROW_IDS_LOCKED = _ROW_IDS.with_for_update()
_SETTLE_SUBMISSION = (update(submissions).where(submissions.c.id == bindparam("p_id"))
                      .values(bulk_id=func.coalesce(bindparam("p_bulk"), submissions.c.bulk_id),
                              error=bindparam("p_err"), updated_at=bindparam("p_now")))
_OPEN = or_(M.c.state.in_(OPEN_STATES), and_(M.c.state == "unknown", M.c.lease_until.is_not(None)))
_NEXT_DUE = select(func.min(case((M.c.state == "queued", M.c.next_at), else_=M.c.lease_until))).where(_OPEN)
_DEPTH = select(func.count()).select_from(M).where(_OPEN)
# the fence of a keyed (or fingerprinted) send: its key's row still in flight under the record's token (nobody
# took the key over), its lease renewed from the record; no row matched: the record (and its send) must not be
_FENCE = Prepared(update(K).where(K.c.caller == bindparam("f_caller"), K.c.key == bindparam("f_key"),
                                  K.c.state == "inflight", K.c.ref == bindparam("f_token"))
                  .values(lease_until=bindparam("f_until")))

@dataclass
class MessageRow:
    """One destination of a submission, as the entrance/dispatcher hands it to the store."""

    message_id: str | None
    upstream_message_id: str | None
    to: str
    sender: str | None
    text: str
    spec: str  # JSON
    notify_url: str | None
    notify_content_type: str | None
    callback_data: str | None
    intermediate: bool
    sms_count: int | None
    status: Status | None
    state: str
    entity_id: str | None = None
    application_id: str | None = None
    campaign_reference_id: str | None = None
    send_at: float | None = None  # a scheduled message: when the upstream sends it (epoch seconds)
    lease_until: float | None = None  # a sync send in flight: reconciled by the queue if still open then
    upstream: str | None = None  # failover: the upstream it goes to first (it may hold it once sent)
    expires_at: float | None = None  # queued and still waiting then: EXPIRED (gateway/send/dispatch.py)
    not_before: float | None = None  # queued: held until then (a delivery window the upstream cannot carry)


@dataclass
class Settled:
    """What became of one destination of a sync send (see :meth:`Store.settle`)."""

    state: str  # sent | rejected | failed | queued (handed over) | unknown (timeout: reconciled)
    status: Status | None
    message_id: str | None
    upstream_message_id: str | None
    sms_count: int | None = None


@dataclass(slots=True)
class Fence:
    """The idempotency key (gateway/store/idempotency.py) a send holds: its submission is recorded only while
    the key's row is still in flight under the submission's token, and the key's lease is renewed from then."""

    caller: str
    key: str  # namespaced: key:<k> | dedupe:<fingerprint>
    lease: float  # seconds


class Fenced(Exception):  # noqa: N818 - an outcome, raised so that GroupCommit isolates the payload
    """A retry took the send's key over before its submission was recorded: nothing of it was recorded (nor may
    be sent)."""


@dataclass
class SubmissionRecord:
    caller: str | None
    entrance: str
    mode: str
    api: str
    bulk_id: str | None
    token: str
    callback: str | None  # caller:<n> | template:<n> | None
    fence: Fence | None = None  # recorded only while this key's row holds ``token`` (see Fence)


def _message_values(sid: int, sub: SubmissionRecord, rows: Sequence[MessageRow], now: float, sent_at: float | None,
                    next_at: float | None) -> list[tuple[Any, ...]]:
    """The message rows of a submission, as ``_MESSAGE_KEYS`` tuples for one ``executemany``."""
    return [
        (sid, sub.caller, sub.entrance, sub.mode, r.state, r.message_id, sub.bulk_id, r.upstream_message_id, r.to,
         r.sender, r.text, r.spec, r.notify_url, r.notify_content_type, r.callback_data, int(r.intermediate),
         sub.callback, r.sms_count,
         *((r.status.group_id, r.status.group_name, r.status.id, r.status.name, r.status.description)
           if r.status else _NO_STATUS),
         sent_at, next_at if r.not_before is None else r.not_before, r.lease_until, now, now, r.entity_id,
         r.application_id, r.campaign_reference_id, r.send_at, r.upstream, r.expires_at)
        for r in rows
    ]


_Record = tuple[SubmissionRecord, Sequence[MessageRow], float]  # accepted at (clock seconds)


class Store:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        # Two groups on one write path: acceptances (queued, and sync sends before they are forwarded) are
        # fsynced before anything is said or sent; sync answers commit relaxed (the upstream holds them too, and
        # a lost answer leaves the row sending with a lease: reconciled by a resend with the same ids).
        self._accept: GroupCommit[_Record, int] = db.group_commit(self._write_records)
        # sync answers complete records written beforehand through _accept (see settle)
        self._records: GroupCommit[Any, bool] = db.group_commit(self._write_settles, relaxed=True)
        # send-path events for /metrics (handed_over, unknown, reconciled, settle_failed): this process's counts
        self.events: dict[str, int] = {}
        self._events_lock = threading.Lock()

    def count(self, event: str, n: int = 1) -> None:
        """Count a send-path event (see ``events``)."""
        with self._events_lock:
            self.events[event] = self.events.get(event, 0) + n

    @property
    def accept_groups(self) -> tuple[int, int]:
        """Queued acceptances so far: (transactions committed, submissions they held)."""
        return self._accept.groups, self._accept.payloads

    def accept_pending(self) -> int:
        """Queued acceptances waiting for their group's transaction."""
        return self._accept.pending()

    @property
    def record_groups(self) -> tuple[int, int]:
        """Sync answers recorded so far (:meth:`settle`): (transactions committed, submissions they held)."""
        return self._records.groups, self._records.payloads

    def record_pending(self) -> int:
        """Sync answers waiting for their group's transaction."""
        return self._records.pending()

    # -- sends ---------------------------------------------------------------------------------
    def accept(self, sub: SubmissionRecord, rows: Sequence[MessageRow]) -> int:
        """Commit a queued submission, or a sync one before it is forwarded (state ``sending``), durably (fsynced with ``synchronous=FULL``) and return its row id.

        Concurrent acceptances share one transaction and one fsync (:class:`gateway.db.GroupCommit`);
        this returns only once the COMMIT holding this submission returned. Raises the group's error
        (nothing of it was written) or :class:`gateway.db.CommitTimeout`."""
        return self._accept.submit((sub, rows, self.clock.now()))

    @staticmethod
    def _write_records(c: Connection, group: list[_Record]) -> list[int]:
        """One group of records: a handful of statements whatever its size. The submissions' ids are
        assigned here (SQLite: MAX(id)+1…, safe: the write lock is held, so the messages need no read-back;
        PostgreSQL: from the sequence, by ``INSERT … RETURNING`` in parameter order)."""
        if c.dialect.name == "sqlite":
            first = int(_NEXT_SUBMISSION.run(c).fetchone()[0]) + 1
            ids = list(range(first, first + len(group)))
            _INSERT_SUBMISSION.many(c, [
                (sid, sub.caller, sub.entrance, sub.mode, sub.api, sub.bulk_id, sub.token, len(rows), now, now)
                for sid, (sub, rows, now) in zip(ids, group, strict=True)])
        else:
            ids = [int(i) for i in c.execute(_RETURNING_SUBMISSIONS, [dict(zip(_SUBMISSION_KEYS[1:], (
                sub.caller, sub.entrance, sub.mode, sub.api, sub.bulk_id, sub.token, len(rows), now, now),
                strict=True)) for sub, rows, now in group]).scalars()]
        messages: list[tuple[Any, ...]] = []
        for sid, (sub, rows, now) in zip(ids, group, strict=True):
            sent_at = now if sub.mode == "sync" else None
            next_at = now if sub.mode == "queued" else None
            messages += _message_values(sid, sub, rows, now, sent_at, next_at)
        _INSERT_MESSAGE.many(c, messages)
        if c.dialect.name == "sqlite":
            _FIRST_CHANGES.run(c, {"lo": ids[0], "hi": ids[-1]})
        else:
            c.execute(_FIRST_CHANGES_OF, {"sids": ids})
            if any(sub.mode == "queued" for sub, *_ in group):
                notify(c, QUEUE)  # other processes' idle queue workers wake once this commits
        # Last, so that PostgreSQL holds the key's row lock only for the COMMIT. One statement per keyed send, in
        # this transaction: the record and its fence commit together. A retry's take-over (_TAKE_STALE in
        # gateway/store/idempotency.py) needs the row in flight under the token it saw, its lease passed:
        # SQLite serialises both transactions (each holds the write lock); on PostgreSQL the later UPDATE waits
        # for the earlier's row lock and re-checks its WHERE on the committed row (READ COMMITTED), so a
        # take-over after this fence finds the lease renewed, and this fence after a take-over finds another
        # token. Either the record or the take-over wins, never both.
        for sub, _, now in group:
            f = sub.fence
            if f is not None and _FENCE.run(c, {"f_caller": f.caller, "f_key": f.key, "f_token": sub.token,
                                               "f_until": now + f.lease}).rowcount != 1:
                raise Fenced(f.key)  # the group rolls back; GroupCommit writes its other payloads alone
        return ids

    def settle(self, sid: int, outcomes: Sequence[Settled], attempts: Sequence[Attempt] = (), *,
               bulk_id: str | None = None, upstream_bulk_id: str | None = None, error: str | None = None,
               next_at: float | None = None, lease_until: float | None = None, durable: bool = False,
               upstream: str | None = None, held: float | None = None) -> bool:
        """Complete a sync send recorded beforehand (state ``sending``): each destination's outcome, in the
        order the rows were recorded, with the upstream attempts. An answer the upstream holds too commits
        relaxed, shared with concurrent ones (group commit); ``durable`` (a hand-over to the queue is an
        acceptance) fsyncs it in a transaction of its own. ``next_at`` and ``lease_until`` (clock seconds)
        schedule rows handed to the queue or left unknown. ``upstream``: the one that carried them or may hold
        them (None: none did, they may go anywhere). ``held``: the lease the rows were recorded with; rows that
        no longer hold it were taken over (their lease ran out: a retry reconciling the send, or the queue's
        resend) and are left to that. False when any was: the queue has them, whatever this request heard."""
        payload = (sid, outcomes, attempts, bulk_id, upstream_bulk_id, error, next_at, lease_until, self.clock.now(),
                   upstream, held)
        if not durable:
            return self._records.submit(payload)
        with self.db.transaction() as c:
            return self._write_settles(c, [payload])[0]

    @staticmethod
    def _write_settles(c: Connection, group: list[Any]) -> list[bool]:
        params: list[dict[str, Any]] = []
        tries: list[tuple[Any, ...]] = []
        subs: list[dict[str, Any]] = []
        kept: list[bool] = []
        rows_of = _ROW_IDS if c.dialect.name == "sqlite" else _ROW_IDS_LOCKED  # SQLite: the write lock is held
        for sid, outcomes, attempts, bulk_id, upstream_bulk_id, error, next_at, lease_until, now, up, held in group:
            rows = c.execute(rows_of, {"sid": sid}).fetchall()
            kept.append(all(lease == held for _, lease in rows))
            ids = [rid if lease == held else None for rid, lease in rows]
            for rid, o in zip(ids, outcomes, strict=False):
                if rid is None:  # taken over since: not this request's to settle
                    continue
                st = o.status
                params.append({
                    "p_rid": rid, "p_st": o.state, "p_mid": o.message_id, "p_uid": o.upstream_message_id,
                    **dict(zip(("p_gid", "p_gname", "p_sid", "p_sname", "p_sdesc"),
                               (st.group_id, st.group_name, st.id, st.name, st.description) if st else _NO_STATUS,
                               strict=True)),
                    "p_count": o.sms_count, "p_bulk": bulk_id, "p_ubulk": upstream_bulk_id, "p_next": next_at,
                    "p_lease": lease_until, "p_err": error, "p_now": now, "p_up": up})
            tries += [(sid, None, a.api, len(ids), now, a.http_status, round(a.duration_ms, 3), a.error)
                      for a in attempts]
            subs.append({"p_id": sid, "p_bulk": bulk_id, "p_err": error, "p_now": now})
        if params:
            c.execute(_SETTLE, params)
            c.execute(insert(status_changes), [
                {"message_row": p["p_rid"], "at": p["p_now"], "source": "answer", "status_name": p["p_sname"],
                 "group_name": p["p_gname"], "detail": p["p_st"]} for p in params])
        if tries:
            _INSERT_ATTEMPT.many(c, tries)
        c.execute(_SETTLE_SUBMISSION, subs)
        if any(p["p_st"] == "queued" for p in params):  # handed over to the queue
            notify(c, QUEUE)
        return kept

    # -- the queue (queued mode) ---------------------------------------------------------------
    # The worker's transactions (lease, release, answer, failure) commit relaxed (no fsync of their own; the
    # next acceptance's fsync covers them): losing one to a power cut only leaves rows leased or queued, which
    # are sent again, and the upstream refuses the repeated messageId as a duplicate ("already accepted").
    def claim_batch(self, max_batch: int, lease_seconds: float, upstream: str | None = None,
                    durable: bool = False) -> list[QueuedMessage]:
        """Lease up to ``max_batch`` due queued messages, the oldest due first, across submissions (many
        small queued sends share one upstream request; one select and one update per batch). Rows pinned to
        no upstream are pinned to ``upstream`` (where they are about to go); each claimed row carries its pin
        as it was before the claim. ``durable`` (several upstreams: the pin decides where a resend may go)
        fsyncs the claim instead of committing it relaxed."""
        now = self.clock.now()
        with self.db.transaction(relaxed=not durable) as c:
            if c.dialect.name == "sqlite":  # the write lock is held: nobody else claims meanwhile
                rows = _CLAIM_DUE.run(c, {"now": now, "n": max_batch}).fetchall()
                if len(rows) < max_batch:  # leases that ran out (a worker died mid-request) are due again
                    rows += _CLAIM_EXPIRED.run(c, {"now": now, "n": max_batch - len(rows)}).fetchall()
            else:  # FOR UPDATE SKIP LOCKED: other processes' claims in progress are passed over
                rows = list(c.execute(_CLAIM_DUE_LOCKED, {"now": now, "n": max_batch}))
                if len(rows) < max_batch:
                    rows += list(c.execute(_CLAIM_EXPIRED_LOCKED, {"now": now, "n": max_batch - len(rows)}))
            for ids in _chunks([r[0] for r in rows]):
                _LEASE.run(c, {"ids": ids, "until": now + lease_seconds, "up": upstream})
        return [QueuedMessage(*r) for r in rows]

    def release(self, ids: Sequence[int], at: float | None = None, reason: str | None = None,
                unpin: Sequence[int] = ()) -> None:
        """Give leased rows back, due ``at`` (default now: not sent in this batch); ``unpin``: rows the claim
        pinned that were not sent anywhere (free again)."""
        now = self.clock.now()
        with self.db.transaction(relaxed=True) as c:
            for chunk in _chunks(list(ids)):
                c.execute(_RELEASE, {"ids": chunk, "at": now if at is None else at, "reason": reason})
            for chunk in _chunks(list(unpin)):
                c.execute(_UNPIN, {"ids": chunk})
            notify(c, QUEUE)

    def pin(self, ids: Sequence[int], upstream: str) -> None:
        """Failover of queued rows the previous upstream certainly did not take: now ``upstream``'s, durably,
        before anything is sent there."""
        with self.db.transaction() as c:
            for chunk in _chunks(list(ids)):
                c.execute(_PIN, {"ids": chunk, "up": upstream})

    def repin(self, sid: int, upstream: str) -> None:
        """Failover of a sync send the previous upstream certainly did not take: its rows now belong to
        ``upstream``, durably, before anything is sent there."""
        with self.db.transaction() as c:
            c.execute(_REPIN, {"sid": sid, "up": upstream})

    def requeue_inflight(self, stale_after: float | None = None) -> int:
        """Make every leased message due now (start-up after a crash). A resend is harmless: the
        upstream sees the same messageId and answers REJECTED_DUPLICATE_MESSAGE_ID.

        On PostgreSQL the store is a cluster's and the leases may be live ones of other instances (taking
        them would resend their in-flight messages): nothing is requeued, a dead instance's leases come back
        when they run out like any expired lease. Only interrupted sync sends without ids (the query API:
        no lease) older than ``stale_after`` seconds, longer than any request may wait for the upstream,
        become ``unknown`` (None: none)."""
        if self.db.postgresql:
            if stale_after is None:
                return 0
            with self.db.transaction() as c:
                c.execute(_ORPHANS.where(M.c.lease_until.is_(None),
                                         M.c.created_at < self.clock.now() - stale_after))
            return 0
        with self.db.transaction() as c:
            n = c.execute(_REQUEUE, {"at": self.clock.now()}).rowcount
            c.execute(_ORPHANS)
            if n:
                notify(c, QUEUE)
            return n

    def batch_answered(self, batch: str, outcomes: Sequence[tuple[int, str, Status, int | None]],
                       upstream_bulk_id: str | None, attempt: Attempt, size: int,
                       retry: Sequence[tuple[int, float, str]] = ()) -> None:
        """Record an upstream answer: ``outcomes`` (row id, new state, status, smsCount); rows in
        ``retry`` (row id, next_at, reason) go back to the queue."""
        now = self.clock.now()
        same: dict[tuple[str, Status, int | None], list[int]] = {}  # most rows of a batch share one outcome
        for rid, state, status, count in outcomes:
            same.setdefault((state, status, count), []).append(rid)
        with self.db.transaction(relaxed=True) as c:
            self._attempt(c, batch, attempt, size, now)
            for (state, s, count), rids in same.items():
                for ids in _chunks(rids):
                    _ANSWERED.run(c, {"ids": ids, "st": state, "gid": s.group_id, "gname": s.group_name,
                                          "sid": s.id, "sname": s.name, "sdesc": s.description, "count": count,
                                          "ubulk": upstream_bulk_id, "now": now})
                    _ANSWER_CHANGES.run(c, {"ids": ids, "now": now, "sname": s.name, "gname": s.group_name,
                                                "st": state})
            self._retry(c, retry, now)

    def batch_failed(self, batch: str, attempt: Attempt, size: int, retry: Sequence[tuple[int, float, str]],
                     unpin: Sequence[int] = ()) -> None:
        """The upstream was unreachable or failed: every row back to the queue at its ``next_at``; the rows
        of ``unpin`` (it certainly did not take them, and none was unsure there before) are free to fail over."""
        now = self.clock.now()
        with self.db.transaction(relaxed=True) as c:
            self._attempt(c, batch, attempt, size, now)
            self._retry(c, retry, now)
            for chunk in _chunks(list(unpin)):
                c.execute(_UNPIN, {"ids": chunk})

    @staticmethod
    def _attempt(c: Connection, batch: str, a: Attempt, size: int, now: float) -> None:
        _INSERT_ATTEMPT.many(c, [{"submission_id": None, "batch": batch, "api": a.api, "destinations": size,
                                     "at": now, "http_status": a.http_status,
                                     "duration_ms": round(a.duration_ms, 3), "error": a.error}])

    @staticmethod
    def _retry(c: Connection, retry: Sequence[tuple[int, float, str]], now: float) -> None:
        if retry:
            _RETRY.many(c, [{"rid": rid, "at": at, "reason": reason, "now": now} for rid, at, reason in retry])

    def next_due(self) -> float | None:
        """When the next queued message (or expired lease) is due; None: the queue is empty."""
        t = self.db.connection().execute(_NEXT_DUE).scalar()
        return None if t is None else float(t)

    def queue_depth(self) -> int:
        """Messages queued or leased."""
        return int(self.db.connection().execute(_DEPTH).scalar_one())

    def waiting_by_caller(self) -> list[tuple[str, int, float]]:
        """Per caller: messages open (queued, leased, or unknown awaiting reconciliation: more than the queue's
        waiting, which pacing counts), and the age in seconds of the oldest (for /metrics)."""
        now = self.clock.now()
        return [(caller or "", n, max(0.0, now - oldest))
                for caller, (n, oldest) in pace.waiting_by_caller(self.db, _OPEN).items()]

    # -- retention -----------------------------------------------------------------------------
    def prune(self, retention_seconds: float) -> dict[str, int]:
        """Delete what was last updated more than ``retention_seconds`` ago: finished messages with
        their reports and status changes, empty submissions, old upstream attempts, delivered outbox
        jobs. Queued messages and dead letters are kept."""
        cutoff = self.clock.now() - retention_seconds
        finished = and_(M.c.updated_at < cutoff, ~_OPEN)
        old = select(M.c.id).where(finished)
        done = select(outbox_jobs.c.id).where(outbox_jobs.c.state == "done", outbox_jobs.c.updated_at < cutoff)
        out: dict[str, int] = {}
        with self.db.transaction() as c:
            out["reports"] = c.execute(delete(reports).where(reports.c.message_row.in_(old))).rowcount
            out["status_changes"] = c.execute(
                delete(status_changes).where(status_changes.c.message_row.in_(old))).rowcount
            out["messages"] = c.execute(delete(M).where(finished)).rowcount
            out["submissions"] = c.execute(delete(submissions).where(
                submissions.c.updated_at < cutoff,
                ~exists().where(M.c.submission_id == submissions.c.id))).rowcount
            out["upstream_attempts"] = c.execute(
                delete(upstream_attempts).where(upstream_attempts.c.at < cutoff)).rowcount
            c.execute(delete(outbox_attempts).where(outbox_attempts.c.job_id.in_(done)))
            out["outbox_jobs"] = c.execute(
                delete(outbox_jobs).where(outbox_jobs.c.state == "done", outbox_jobs.c.updated_at < cutoff)).rowcount
        return out
