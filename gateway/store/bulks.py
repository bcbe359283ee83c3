"""Scheduled bulks: the messages of a caller's bulk that carry a ``sendAt`` (``/sms/1/bulks``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from .engine import Database
from .schema import messages as M


@dataclass(slots=True)
class ScheduledMessage:
    """One scheduled message of a bulk."""

    row_id: int
    state: str
    send_at: float
    upstream_bulk_id: str | None


_SCHEDULED = (select(M.c.id, M.c.state, M.c.send_at, M.c.upstream_bulk_id)
              .where(M.c.caller == bindparam("caller"), M.c.bulk_id == bindparam("bulk"), M.c.send_at.is_not(None)))
_RESCHEDULE = update(M).where(M.c.id == bindparam("rid")).values(send_at=bindparam("at"), updated_at=bindparam("now"))


def scheduled(db: Database, caller: str, bulk_id: str) -> list[ScheduledMessage]:
    """The scheduled messages of ``caller``'s bulk ``bulk_id`` (none: unknown, another's, or not scheduled)."""
    return [ScheduledMessage(*r) for r in db.connection().execute(_SCHEDULED, {"caller": caller, "bulk": bulk_id})]


def reschedule(db: Database, row_ids: Sequence[int], at: float, now: float) -> None:
    """Record the upstream's new ``sendAt`` on the bulk's messages."""
    if row_ids:
        with db.transaction() as c:
            c.execute(_RESCHEDULE, [{"rid": rid, "at": at, "now": now} for rid in row_ids])
