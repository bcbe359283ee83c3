"""Rejected pushes: upstream report and inbound bodies that could not be parsed (migration 0003).

The hook answers them with a 2xx (so Infobip does not retry them for days) and keeps them here, up
to :data:`MAX_KEPT_BODY` bytes each, for an operator to inspect (``python app.py rejected``); they are
pruned with everything else after ``store.retention_hours``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..model import ApiError
from .engine import Database
from .schema import rejected_pushes

MAX_KEPT_BODY = 64 * 1024
rp = rejected_pushes.c


@dataclass(frozen=True)
class RejectedPush:
    id: int
    kind: str
    ref: str | None
    content_type: str | None
    reason: str
    size: int
    body: bytes
    created_at: float


def reason_of(exc: ApiError) -> str:
    """Every field the parser named, with its reason (``results[0].messageId: is required; …``)."""
    return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.validation_errors.items()) or exc.text


def add(db: Database, kind: str, ref: str | None, content_type: str | None, reason: str, body: bytes,
        now: float) -> int:
    """Keep a push that could not be parsed; its id."""
    with db.transaction() as c:
        return int(c.execute(sa.insert(rejected_pushes).values(
            kind=kind, ref=ref, content_type=(content_type or "")[:200] or None, reason=reason[:2000],
            size=len(body), body=body[:MAX_KEPT_BODY], created_at=now,
        ).returning(rp.id)).scalar_one())


def recent(db: Database, limit: int = 50) -> list[RejectedPush]:
    """The newest rejected pushes first."""
    rows = db.connection().execute(sa.select(rejected_pushes).order_by(rp.id.desc()).limit(limit)).mappings()
    return [RejectedPush(r["id"], r["kind"], r["ref"], r["content_type"], r["reason"], r["size"], bytes(r["body"] or b""),
                         r["created_at"]) for r in rows]


def prune(db: Database, cutoff: float) -> int:
    """Delete the rejected pushes kept since before ``cutoff``; how many."""
    with db.transaction() as c:
        return int(c.execute(sa.delete(rejected_pushes).where(rp.created_at < cutoff)).rowcount)


def counts(db: Database) -> dict[str, int]:
    """Rejected pushes kept, by kind (``report``, ``inbound``)."""
    q = sa.select(rp.kind, sa.func.count()).group_by(rp.kind)
    return {str(k): int(n) for k, n in db.connection().execute(q)}
