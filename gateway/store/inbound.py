"""The inbound tables (migration 3): messages stored once, the pull queue, auto-replies.

Messages go in and come out as :class:`~gateway.model.InboundMessage`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ..model import InboundMessage, Price
from ..wire.reports import price_from_wire, price_to_wire
from .dialects import insert
from .engine import Connection, Database
from .schema import inbound_messages, inbound_pull, inbound_replies

im, ip, ir = inbound_messages.c, inbound_pull.c, inbound_replies.c


@dataclass
class StoredInbound:
    """A stored message with its routing outcome and replies (for tests and operators)."""

    message: InboundMessage
    rule: str | None
    forward_job: int | None
    forward_error: str | None
    replies: list[dict[str, Any]] = field(default_factory=list)


def _price_json(p: Price | None) -> str | None:
    return None if p is None else json.dumps(price_to_wire(p))


def insert_message(conn: Connection, msg: InboundMessage, now: float) -> int | None:
    """Store ``msg``; return its row id, or None if this messageId is already stored (a re-push)."""
    return conn.execute(insert(conn, inbound_messages).values(
        message_id=msg.message_id, sender=msg.sender, receiver=msg.to, text=msg.text, clean_text=msg.clean_text,
        keyword=msg.keyword, received_at=msg.received_at, sms_count=msg.sms_count, price=_price_json(msg.price),
        callback_data=msg.callback_data, extra=json.dumps(msg.extra) if msg.extra else None, created_at=now,
    ).on_conflict_do_nothing(index_elements=["message_id"]).returning(im.id)).scalar_one_or_none()


def set_outcome(conn: Connection, inbound_id: int, rule: str | None, job: int | None, error: str | None) -> None:
    conn.execute(sa.update(inbound_messages).where(im.id == inbound_id)
                 .values(rule=rule, forward_job=job, forward_error=error))


def keep_for_pull(conn: Connection, inbound_id: int, callers: tuple[str, ...]) -> None:
    if callers:
        conn.execute(insert(conn, inbound_pull).on_conflict_do_nothing(),
                     [{"caller": c, "inbound_id": inbound_id} for c in callers])


def add_reply(conn: Connection, inbound_id: int, rule: str, caller: str, to: str, now: float,
              suppressed: str | None = None) -> int:
    """A reply row, ``pending``; or ``suppressed`` with that reason (gateway/inbound/loops.py)."""
    return int(conn.execute(sa.insert(inbound_replies).values(
        inbound_id=inbound_id, rule=rule, caller=caller, to_number=to, state="suppressed" if suppressed else "pending",
        error=suppressed, created_at=now, updated_at=now,
    ).returning(ir.id)).scalar_one())


def replies_since(conn: Connection, to: str, since: float) -> int:
    """Auto-replies to ``to`` (pending or sent) created at ``since`` or later."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(inbound_replies).where(
        ir.to_number == to, ir.created_at >= since, ir.state.in_(("pending", "sent")))).scalar_one())


def reply_for(db: Database, message_id: str, rule: str, caller: str, to: str, now: float) -> int | None:
    """A pending reply row for the stored message ``message_id`` (None if it is not stored)."""
    with db.transaction() as conn:
        inbound_id = conn.execute(sa.select(im.id).where(im.message_id == message_id)).scalar_one_or_none()
        return None if inbound_id is None else add_reply(conn, int(inbound_id), rule, caller, to, now)


def finish_reply(db: Database, reply_id: int, now: float, message_id: str | None = None, status: str | None = None,
                 error: str | None = None, state: str | None = None) -> None:
    """``sent``, or ``failed`` with ``error`` (or ``state``: ``suppressed``)."""
    with db.transaction() as conn:
        conn.execute(sa.update(inbound_replies).where(ir.id == reply_id).values(
            state=state or ("failed" if error else "sent"), message_id=message_id, status=status, error=error,
            updated_at=now))


def _message(row: sa.Row[Any]) -> InboundMessage:
    return InboundMessage(
        row.message_id, row.sender, row.receiver, row.text,
        row.clean_text if row.clean_text is not None else row.text, row.keyword or "", row.received_at,
        row.sms_count or 1, price_from_wire(json.loads(row.price)) if row.price else None, row.callback_data,
        json.loads(row.extra) if row.extra else {},
    )


def pull(db: Database, caller: str, limit: int, now: float) -> tuple[list[InboundMessage], int]:
    """Up to ``limit`` of ``caller``'s unfetched messages, oldest first, marked fetched in the same
    transaction (each is returned once); and how many are still pending after them."""
    unfetched = (ip.caller == caller, ip.fetched_at.is_(None))
    with db.transaction() as conn:
        rows = conn.execute(sa.select(inbound_messages).select_from(
            inbound_pull.join(inbound_messages, im.id == ip.inbound_id)).where(*unfetched)
            .order_by(ip.inbound_id).limit(limit)
            .with_for_update(of=inbound_pull, skip_locked=True)).all()  # once across instances (see reports.py)
        if rows:
            conn.execute(sa.update(inbound_pull).where(ip.caller == caller, ip.inbound_id.in_([r.id for r in rows]))
                         .values(fetched_at=now))
        pending = conn.execute(sa.select(sa.func.count()).select_from(inbound_pull).where(*unfetched)).scalar_one()
    return [_message(r) for r in rows], int(pending)


def message(db: Database, message_id: str) -> StoredInbound | None:
    """One stored message with its routing outcome and replies (for tests and operators)."""
    conn = db.connection()
    row = conn.execute(sa.select(inbound_messages).where(im.message_id == message_id)).first()
    if row is None:
        return None
    replies = conn.execute(sa.select(ir.rule, ir.caller, ir.to_number, ir.state, ir.message_id, ir.status, ir.error)
                           .where(ir.inbound_id == row.id).order_by(ir.id)).mappings().all()
    return StoredInbound(_message(row), row.rule, row.forward_job, row.forward_error, [dict(r) for r in replies])
