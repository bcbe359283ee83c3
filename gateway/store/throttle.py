"""Failed logins in the store (table ``login_failures``): the counts and locks every process of a cluster
shares, so that a name or address locked by one process is refused by all (the policy is gateway/throttle.py).

A failure is counted with one upsert per key that returns the new count (``INSERT … ON CONFLICT DO UPDATE
… RETURNING``), and its lock is written in the same transaction: on SQLite the write lock (``BEGIN
IMMEDIATE``) serialises every process, on PostgreSQL the upsert holds the row's lock until ``COMMIT``, so
concurrent failures on two processes both count and the lock follows the count the cluster reached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from .dialects import INSERTS
from .engine import Database
from .schema import login_failures as T


@dataclass
class Failures:
    key: str
    failures: int
    locked_until: float
    last: float


_COLS = (T.c.key, T.c.failures, T.c.locked_until, T.c.last)


def fail(db: Database, keys: Sequence[str], now: float, forget_after: float,
         lock_for: Callable[[int], float]) -> list[Failures]:
    """One more failure for each of ``keys`` at ``now``, counted anew when both the last one and the end of
    its lock are more than ``forget_after`` seconds old (:func:`forgotten`); a key whose count makes
    ``lock_for(count)`` positive is locked that many seconds from now (a lock is never shortened). The rows
    as written."""
    out = []
    with db.transaction(relaxed=True) as c:  # a lost last failure after a power cut is no loss
        upsert = INSERTS[c.dialect.name](T)
        count = upsert.on_conflict_do_update(
            index_elements=[T.c.key],
            set_={"failures": sa.case((forgotten(now, forget_after), 1), else_=T.c.failures + 1), "last": now},
        ).returning(T.c.failures, T.c.locked_until)
        for key in sorted(set(keys)):  # one order for every process: no deadlock between two failures
            failures, locked_until = c.execute(count.values(key=key, failures=1, locked_until=0.0, last=now)).one()
            if (delay := lock_for(int(failures))) > 0 and now + delay > locked_until:
                locked_until = now + delay
                c.execute(sa.update(T).where(T.c.key == key).values(locked_until=locked_until))
            out.append(Failures(key, int(failures), float(locked_until), now))
    return out


def forgotten(now: float, forget_after: float) -> sa.ColumnElement[bool]:
    """Whether a row's count is forgotten at ``now``: ``forget_after`` seconds have passed since its last
    failure and since its lock ended (counted from the failure alone, a lock of ``max_delay`` >=
    ``forget_after`` would end with a fresh set of free failures)."""
    return sa.and_(T.c.last < now - forget_after, T.c.locked_until < now - forget_after)


def view(db: Database, locked_after: float | None, since: float) -> list[Failures]:
    """The rows written after ``since`` (failures, their locks, clears), and with ``locked_after`` also those
    locked after it, in one query. Only :func:`fail` and :func:`clear` write a row, and both set its
    ``last``, so the rows written after ``since`` are every change since then."""
    changed = T.c.last > since
    where = changed if locked_after is None else sa.or_(T.c.locked_until > locked_after, changed)
    rows = db.connection().execute(sa.select(*_COLS).where(where))
    return [Failures(r[0], int(r[1]), float(r[2]), float(r[3])) for r in rows]


def clear(db: Database, key: str, now: float) -> None:
    """Forget ``key``'s failures (a success): its row counts none and is unlocked at ``now``, which the other
    processes' reads of what changed see (a deleted row they would not), and is pruned like the others."""
    with db.transaction(relaxed=True) as c:
        upsert = INSERTS[c.dialect.name](T)
        c.execute(upsert.values(key=key, failures=0, locked_until=0.0, last=now).on_conflict_do_update(
            index_elements=[T.c.key], set_={"failures": 0, "locked_until": 0.0, "last": now}))


def prune(db: Database, now: float, forget_after: float) -> int:
    """Delete the rows whose count is forgotten (:func:`forgotten`)."""
    with db.transaction(relaxed=True) as c:
        return int(c.execute(sa.delete(T).where(forgotten(now, forget_after))).rowcount)
