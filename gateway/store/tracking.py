"""Conversion tracking on the message record (``messages.process_key``, ``converted_at``, ``conversion_calls``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update

from .engine import Database
from .schema import messages as M


@dataclass(slots=True)
class TrackedMessage:
    """What conversion logging needs of a caller's message."""

    row_id: int
    state: str
    upstream_message_id: str | None
    process_key: str | None
    upstream: str | None = None  # failover: the upstream that carried it


_FIND = (select(M.c.id, M.c.state, M.c.upstream_message_id, M.c.process_key, M.c.upstream)
         .where(M.c.message_id == bindparam("mid"), M.c.caller == bindparam("caller"))
         .order_by(M.c.id.desc()).limit(1))
_RECORD = update(M).where(M.c.id == bindparam("rid")).values(
    process_key=func.coalesce(M.c.process_key, bindparam("key")),
    converted_at=func.coalesce(M.c.converted_at, bindparam("now")),
    conversion_calls=M.c.conversion_calls + 1, updated_at=bindparam("now"))
_KEY = select(M.c.process_key).where(M.c.id == bindparam("rid"))


def find(db: Database, caller: str, message_id: str) -> TrackedMessage | None:
    """``caller``'s newest message with ``message_id``, or None."""
    row = db.connection().execute(_FIND, {"mid": message_id, "caller": caller}).first()
    return TrackedMessage(*row) if row else None


def record_conversion(db: Database, row_id: int, key: str, now: float) -> str:
    """Record ``key`` unless one is recorded already; count the call; return the recorded key."""
    with db.transaction() as c:
        c.execute(_RECORD, {"rid": row_id, "key": key, "now": now})
        stored = c.execute(_KEY, {"rid": row_id}).scalar()
    return str(stored) if stored else key
