"""Idempotency keys, duplicate fingerprints and custom messageIds: one row per (caller, key), reserved
atomically before a send (``INSERT … ON CONFLICT DO NOTHING`` on the unique (caller, key), then a
conditional take-over of an expired row), completed with the first answer once it is known.

Keys are namespaced by kind: ``key:<Idempotency-Key>``, ``dedupe:<fingerprint>``, ``mid:<messageId>``.
While a key is in flight its ``ref`` holds the token its request's submission is recorded under (the
submission's ``dlr_token``, chosen before the reservation): written with the reservation itself, it links the
key to what the request recorded with no extra statement, so a key left in flight by a dead process is
reconciled from that record (``recorded``), or taken over when nothing was recorded (nothing was sent).
Writes commit relaxed (``synchronous=NORMAL``: they survive a process crash, not a power cut) so that the
guard adds no fsync of its own to a send; the message record keeps its own durability policy. Reservations
and first answers are group-committed (:class:`Reservations`): concurrent requests share a transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, func, or_, select, update

from ..model import Status
from .dialects import INSERTS, insert, inserted
from .engine import Connection, Database, Prepared
from .schema import idempotency as T
from .schema import messages as M
from .schema import submissions as S

RESERVED, INFLIGHT, DONE, MISMATCH, RECORDED = "reserved", "inflight", "done", "mismatch", "recorded"
_STATUS_COLS = ("status_group_id", "status_group_name", "status_id", "status_name", "status_description")


@dataclass(slots=True)
class Slot:
    """The outcome of a reservation: ``reserved`` (this request sends), ``inflight`` (another request with
    this key is sending), ``done`` (its answer is below), ``mismatch`` (the key was used for other content),
    ``recorded`` (the request that held the key died after recording its submission, under the token ``ref``:
    this request answers from that record, and sends nothing)."""

    outcome: str
    http_status: int | None = None
    content_type: str | None = None
    body: bytes | None = None
    ref: str | None = None


_ROW_KEYS = ("caller", "key", "fingerprint", "state", "http_status", "content_type", "body", "ref", "message_id",
             "replays", "lease_until", "expires_at", "created_at", "updated_at")
#: the hot statements of a reservation and its completion, built and compiled once (engine.Prepared): per
#: dialect, the insert that does nothing on a conflict (PostgreSQL: RETURNING says whether it inserted)
_INSERT = {name: Prepared(make(T).on_conflict_do_nothing(), keys=_ROW_KEYS) for name, make in INSERTS.items()}
_INSERT["postgresql"] = Prepared(INSERTS["postgresql"](T).on_conflict_do_nothing().returning(T.c.id), keys=_ROW_KEYS)
_MINE = and_(T.c.caller == bindparam("w_caller"), T.c.key == bindparam("w_key"))
_TAKE_VALUES = {k: bindparam(f"v_{k}") for k in _ROW_KEYS[2:]}
# an answered row past its window or TTL is free; one still in flight is not, however old (its request may be
# sending now): past its lease it goes the way of any dead request's row below (the record, or a take-over)
_EXPIRED = and_(T.c.expires_at <= bindparam("w_now"), T.c.state == "done")
_TAKE = Prepared(update(T).where(_MINE, _EXPIRED).values(**_TAKE_VALUES))
# an in-flight row whose lease passed was left by a dead (or slow) request: taken over, or its lease renewed
# (the request reconciling it from the record holds it), by one request only (the lease moves on with it).
# Both re-check what the retry saw: the row still under the token whose record it looked for (``w_ref``), the
# lease still passed. Against the fence of the request that holds the key (records.py, _FENCE: recorded only
# while the row is in flight under its token, renewing the lease in the record's transaction), one wins:
# SQLite runs the two transactions one after the other (each holds the write lock); PostgreSQL (READ
# COMMITTED) makes the later UPDATE wait for the earlier's row lock, then re-evaluate its WHERE on the row as
# committed: after a fence the lease is live again (no take-over), after a take-over the token is another
# (the fence matches nothing: that request records and sends nothing). ``w_ref`` also keeps a retry from taking
# over a row that another retry took over meanwhile (whose record it never looked for).
_STALE = and_(_MINE, T.c.state == "inflight", T.c.lease_until <= bindparam("w_now"), T.c.ref == bindparam("w_ref"))
_TAKE_STALE = Prepared(update(T).where(_STALE).values(**_TAKE_VALUES))
_RENEW = Prepared(update(T).where(_STALE).values(lease_until=bindparam("v_lease_until"),
                                                 updated_at=bindparam("v_updated_at")))
_HELD = Prepared(select(T.c.fingerprint, T.c.state, T.c.http_status, T.c.content_type, T.c.body, T.c.ref,
                        T.c.lease_until).where(_MINE))
_SUBMISSION = select(S.c.id).where(S.c.dlr_token == bindparam("token")).scalar_subquery()
# something that may have been sent: a submission whose every message failed sent nothing (its key is taken over)
_RECORDED = Prepared(select(M.c.id).where(M.c.submission_id == _SUBMISSION, M.c.state != "failed").limit(1))
# a retry answering from the record of a send whose request still holds its rows (alive but late: its lease ran
# out) hands them to the queue in the same transaction: due now, resent with the same ids (the upstream refuses a
# second copy), and no longer that request's to settle (records.py, _ROW_IDS: it then answers PENDING_ACCEPTED);
# the retry's PENDING_ACCEPTED is then what happens, not a guess
_HAND_OVER = Prepared(update(M).where(M.c.submission_id == _SUBMISSION, M.c.state == "sending",
                                      M.c.lease_until > bindparam("now")).values(lease_until=bindparam("now")))
_RECORD = (select(S.c.bulk_id, M.c.to_addr, M.c.message_id, M.c.upstream_message_id, M.c.state, M.c.sms_count,
                  *(M.c[k] for k in _STATUS_COLS))
           .join(S, S.c.id == M.c.submission_id).where(S.c.dlr_token == bindparam("token")).order_by(M.c.id))
# only by the request that holds the key (in flight under its token): one that lost it never overwrites the answer
_HOLDER = and_(_MINE, T.c.state == "inflight", T.c.ref == bindparam("w_token"))
_COMPLETE = Prepared(update(T).where(_HOLDER).values(
    state="done", **{k: bindparam(f"v_{k}") for k in ("http_status", "content_type", "body", "ref", "message_id",
                                                        "updated_at")}))


def _reserve_on(c: Connection, caller: str, key: str, fingerprint: str, token: str, now: float, ttl: float,
                lease: float) -> Slot:
    row = (caller, key, fingerprint, "inflight", None, None, None, token, None, 0, now + lease, now + ttl, now, now)
    ins = _INSERT[c.dialect.name]
    if c.dialect.name == "sqlite":
        if ins.run(c, dict(zip(_ROW_KEYS, row, strict=True))).rowcount == 1:
            return Slot(RESERVED)
    elif ins.run(c, dict(zip(_ROW_KEYS, row, strict=True))).fetchone() is not None:
        return Slot(RESERVED)
    where = {"w_caller": caller, "w_key": key, "w_now": now}
    values = {f"v_{k}": v for k, v in zip(_ROW_KEYS[2:], row[2:], strict=True)}
    if _TAKE.run(c, {**where, **values}).rowcount == 1:
        return Slot(RESERVED)
    held = _HELD.run(c, where).fetchone()
    if held is None:  # deleted since the insert conflicted (PostgreSQL, a concurrent prune): try again
        return Slot(INFLIGHT)
    fp, state, http_status, content_type, body, ref, lease_until = held
    if fp != fingerprint:
        return Slot(MISMATCH)
    if state == "done":
        return Slot(DONE, http_status, content_type, bytes(body or b""), ref)
    if lease_until > now or ref is None:  # live, or reserved before rows carried their token: unknown, kept
        return Slot(INFLIGHT)
    # its request died: what it recorded (under its token) is the answer; nothing recorded, nothing was sent
    # (and, once taken over, never will be: its record is fenced)
    stale = {**where, "w_ref": ref}
    if _RECORDED.run(c, {"token": ref}).fetchone() is not None:
        renewed = _RENEW.run(c, {**stale, "v_lease_until": now + lease, "v_updated_at": now}).rowcount == 1
        if renewed:
            _HAND_OVER.run(c, {"token": ref, "now": now})
        return Slot(RECORDED, ref=ref) if renewed else Slot(INFLIGHT)
    # taken over: the slot carries the dead request's token, under which it may have reserved custom messageIds
    # (reserve_many gives them to this request, which sends the same content in its place)
    return Slot(RESERVED, ref=ref) if _TAKE_STALE.run(c, {**stale, **values}).rowcount == 1 else Slot(INFLIGHT)


def _complete_on(c: Connection, caller: str, key: str, token: str, http_status: int, content_type: str | None,
                 body: bytes, ref: str | None, message_id: str | None, now: float) -> None:
    _COMPLETE.run(c, {"w_caller": caller, "w_key": key, "w_token": token, "v_http_status": http_status,
                      "v_content_type": content_type, "v_body": body, "v_ref": ref, "v_message_id": message_id,
                      "v_updated_at": now})


class Reservations:
    """Reservations and first answers, group-committed: concurrent requests share one (relaxed) transaction
    instead of queueing on the write lock one by one (see GroupCommit in gateway/store/engine.py)."""

    def __init__(self, db: Database) -> None:
        self._reserve = db.group_commit(lambda c, ps: [_reserve_on(c, *p) for p in ps], relaxed=True)
        self._complete = db.group_commit(lambda c, ps: [_complete_on(c, *p) for p in ps], relaxed=True)

    def reserve(self, caller: str, key: str, fingerprint: str, token: str, now: float, ttl: float,
                lease: float) -> Slot:
        """Reserve ``key`` for ``caller`` until ``now + ttl`` (in flight until ``now + lease``) unless a live row
        holds it; ``token``: the one this request's submission will be recorded under. An in-flight row whose
        lease passed (its request's process died) is ``recorded`` if that request recorded a submission, else
        taken over."""
        return self._reserve.submit((caller, key, fingerprint, token, now, ttl, lease))

    def complete(self, caller: str, key: str, token: str, http_status: int, content_type: str | None, body: bytes,
                 ref: str | None, message_id: str | None, now: float) -> None:
        """Store the first answer under a key reserved with ``token`` (still in flight under it: a request that
        lost its key to a retry overwrites nothing)."""
        self._complete.submit((caller, key, token, http_status, content_type, body, ref, message_id, now))


@dataclass(slots=True)
class RecordedMessage:
    """One destination as its submission's record holds it now."""

    to: str
    message_id: str | None
    upstream_message_id: str | None
    state: str
    status: Status | None
    sms_count: int | None


@dataclass(slots=True)
class Record:
    """A submission recorded by a request that died before its answer was stored under its key."""

    bulk_id: str | None
    messages: list[RecordedMessage]


def recorded(db: Database, token: str) -> Record:
    """The submission recorded under ``token`` (its messages in the order they were recorded)."""
    rows = db.connection().execute(_RECORD, {"token": token}).fetchall()
    return Record(rows[0][0] if rows else None, [
        RecordedMessage(to, mid, uid, state, Status(*st) if st[3] is not None else None, count)
        for _, to, mid, uid, state, count, *st in rows])


def release(db: Database, caller: str, keys: Sequence[str], token: str | None = None, *,
            inflight: bool = True) -> None:
    """Forget reservations whose request sent nothing (a corrected retry may use them); with ``token``, only
    while still held under it (a request that lost its key, or its messageIds, to a retry deletes nothing);
    ``inflight``: a key's row (a messageId's is final at once: state ``done``)."""
    if keys:
        mine = (T.c.ref == token,) if token is not None else ()
        if token is not None and inflight:
            mine += (T.c.state == "inflight",)
        with db.transaction(relaxed=True) as c:
            c.execute(delete(T).where(T.c.caller == caller, T.c.key.in_(list(keys)), *mine))


def count_replay(db: Database, caller: str, key: str, now: float) -> None:
    with db.transaction(relaxed=True) as c:
        c.execute(update(T).where(T.c.caller == caller, T.c.key == key).values(
            replays=T.c.replays + 1, updated_at=now))


def reserve_many(db: Database, caller: str, keys: Sequence[str], fingerprint: str, now: float, ttl: float,
                 token: str | None = None, displaced: str | None = None) -> set[str]:
    """Reserve each of ``keys`` (``mid:<messageId>``; final at once: state ``done``, held under ``token``);
    return those another request holds. ``displaced``: the token of the dead (or fenced) request whose key this
    request took over (nothing recorded, so nothing sent): the messageIds it reserved are this request's too."""
    taken: set[str] = set()
    with db.transaction(relaxed=True) as c:
        for key in keys:
            values = {"caller": caller, "key": key, "fingerprint": fingerprint, "state": "done", "replays": 0,
                      "ref": token, "lease_until": now, "expires_at": now + ttl, "created_at": now, "updated_at": now}
            if inserted(c, insert(c, T).values(**values).on_conflict_do_nothing()):
                continue
            values.pop("caller"), values.pop("key")
            free = T.c.expires_at <= now
            if displaced is not None:
                # A retry that took its key over from a request that died (or was fenced) between reserving its
                # messageIds and recording its submission would otherwise find them taken and refuse its own
                # message (REJECTED_DUPLICATE_MESSAGE_ID: never sent at all). Its ids are re-reservable when the
                # row is still held under that request's token, for the same content (same fingerprint), and no
                # message of the caller that may have been sent carries the id (the dead request recorded none
                # that was: else its key would have been reconciled, not taken over). Two different messages
                # can never share an id this way: only the request holding the key under which the ids were
                # reserved, with that very content, gets them (the same message, sent once in the dead one's
                # place); another request with other content, or a live holder, still finds them taken (and the
                # advanced API carries the id: the upstream would refuse a second anyway). The rows move to this
                # request's token, so a fenced holder's release (its 409) deletes nothing of them. One
                # statement, in this transaction: the check runs only when the insert conflicts.
                sent = select(M.c.id).where(M.c.caller == caller, M.c.message_id == key[4:], M.c.state != "failed")
                free = or_(free, and_(T.c.ref == displaced, T.c.fingerprint == fingerprint, ~sent.exists()))
            if c.execute(update(T).where(T.c.caller == caller, T.c.key == key, free).values(**values)).rowcount == 0:
                taken.add(key)
    return taken


def prune(db: Database, now: float) -> int:
    """Delete expired rows (an inflight one only once its lease passed too)."""
    with db.transaction(relaxed=True) as c:
        return c.execute(delete(T).where(T.c.expires_at < now, or_(T.c.state == "done", T.c.lease_until < now))
                         ).rowcount


def replays_by_row(db: Database, row_ids: Sequence[int]) -> dict[int, int]:
    """Replays answered for the submissions of the message rows ``row_ids``: {row id: replays}."""
    if not row_ids:
        return {}
    first = M.alias("first")
    ids = list(row_ids)
    # many ids (the log's CSV export) are read as their id range: one range scan, not thousands of parameters
    rows = M.c.id.in_(ids) if len(ids) <= 100 else M.c.id.between(min(ids), max(ids))
    q = (select(M.c.id, func.sum(T.c.replays))
         .join(first, first.c.submission_id == M.c.submission_id)
         .join(T, and_(T.c.caller == first.c.caller, T.c.message_id == first.c.message_id))
         .where(rows, T.c.replays > 0)
         .group_by(M.c.id))
    wanted = set(ids)
    return {int(rid): int(n) for rid, n in db.connection().execute(q) if rid in wanted}
