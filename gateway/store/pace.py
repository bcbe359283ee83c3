"""Traffic control in the store: the token buckets every process shares (table ``pace``), and the queue
operations pacing, delivery windows and expiry need (defer a claimed message, expire one, count what waits).

Buckets are read and written inside the caller's transaction: on SQLite the write lock (``BEGIN
IMMEDIATE``) serialises every process, on PostgreSQL the rows are locked ``FOR UPDATE`` (missing ones are
inserted first, ``ON CONFLICT DO NOTHING``), so two processes never spend the same token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import ColumnElement

from ..model import Status
from .dialects import INSERTS
from .engine import Connection, Database
from .schema import messages as M
from .schema import pace, status_changes


@dataclass
class Bucket:
    key: str
    tokens: float
    at: float
    horizon: float
    paused_until: float
    taken: int


_COLS = (pace.c.key, pace.c.tokens, pace.c.at, pace.c.horizon, pace.c.paused_until, pace.c.taken)
_NEW = {d: ins(pace).on_conflict_do_nothing(index_elements=["key"]) for d, ins in INSERTS.items()}
_SAVE = (sa.update(pace).where(pace.c.key == sa.bindparam("k"))
         .values(tokens=sa.bindparam("t"), at=sa.bindparam("a"), horizon=sa.bindparam("h"),
                 paused_until=sa.bindparam("p"), taken=sa.bindparam("n")))


def load(c: Connection, keys: Iterable[str]) -> dict[str, Bucket]:
    """The buckets ``keys``, locked for this transaction; a new bucket starts full (``at`` = 0)."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    c.execute(_NEW[c.dialect.name], [{"key": k, "tokens": 0.0, "at": 0.0} for k in keys])
    query = sa.select(*_COLS).where(pace.c.key.in_(keys)).order_by(pace.c.key)
    if c.dialect.name != "sqlite":
        query = query.with_for_update()
    return {r[0]: Bucket(r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5])) for r in c.execute(query)}


def save(c: Connection, buckets: Iterable[Bucket]) -> None:
    rows = [{"k": b.key, "t": b.tokens, "a": b.at, "h": b.horizon, "p": b.paused_until, "n": b.taken}
            for b in buckets]
    if rows:
        c.execute(_SAVE, rows)


def snapshot(db: Database) -> dict[str, Bucket]:
    """Every bucket as last written (the admin UI and /metrics)."""
    rows = db.connection().execute(sa.select(*_COLS))
    return {r[0]: Bucket(r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5])) for r in rows}


_WAITING = M.c.state == "queued"


def waiting(db: Database, caller: str | None) -> int:
    """The caller's messages waiting in the queue."""
    return int(db.connection().execute(
        sa.select(sa.func.count()).select_from(M).where(_WAITING, M.c.caller == caller)).scalar_one())


def waiting_by_caller(db: Database, which: ColumnElement[bool] = _WAITING) -> dict[str | None, tuple[int, float]]:
    """Per caller: the messages ``which`` picks (by default those waiting in the queue) and when the oldest of
    them was accepted."""
    rows = db.connection().execute(
        sa.select(M.c.caller, sa.func.count(), sa.func.min(M.c.created_at)).where(which).group_by(M.c.caller))
    return {r[0]: (int(r[1]), float(r[2])) for r in rows}


_DEFER = (sa.update(M).where(M.c.id == sa.bindparam("rid"), M.c.state == "sending")
          .values(state=sa.bindparam("st"), next_at=sa.bindparam("at"), lease_until=sa.bindparam("lease")))


def defer(db: Database, rows: Sequence[tuple[int, str, float]]) -> None:
    """Give claimed rows (row id, the state they were claimed in, when due) back without an attempt: a
    ``queued`` row is due at that time; a row being reconciled (``sending``/``unknown``) keeps its state,
    its lease running out then."""
    if not rows:
        return
    with db.transaction(relaxed=True) as c:
        c.execute(_DEFER, [{"rid": rid, "st": st, "at": at, "lease": None if st == "queued" else at}
                           for rid, st, at in rows])


def expire(db: Database, row_ids: Sequence[int], status: Status, reason: str, now: float) -> list[int]:
    """Claimed rows whose validity ran out before they were sent become ``expired`` with ``status``; the rows
    changed (a row no longer leased by this worker is left alone)."""
    if not row_ids:
        return []
    with db.transaction() as c:  # fsynced: the caller is told EXPIRED, which must not be sent after all
        done = [r[0] for r in c.execute(sa.select(M.c.id).where(M.c.id.in_(list(row_ids)), M.c.state == "sending"))]
        if done:
            c.execute(sa.update(M).where(M.c.id.in_(done)).values(
                state="expired", status_group_id=status.group_id, status_group_name=status.group_name,
                status_id=status.id, status_name=status.name, status_description=status.description,
                lease_until=None, last_error=reason, done_at=now, updated_at=now))
            c.execute(sa.insert(status_changes), [
                {"message_row": rid, "at": now, "source": "queue", "status_name": status.name,
                 "group_name": status.group_name, "detail": "expired"} for rid in done])
    return done


def unexpirable(db: Database, row_ids: Sequence[int]) -> None:
    """Rows whose last attempt has an unknown outcome (the upstream may hold them) are never expired: they
    are resent with the same ids until the upstream says what became of them."""
    if row_ids:
        with db.transaction(relaxed=True) as c:
            c.execute(sa.update(M).where(M.c.id.in_(list(row_ids))).values(expires_at=None))
