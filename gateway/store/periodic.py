"""Periodic singleton work (pruning): done once per interval across every bridge on one store.

Every bridge process looks often (a quarter of the interval); the one that finds the interval elapsed
since the last run claims the next run with one conditional ``UPDATE`` of ``periodic_runs`` and does the
work, the others skip it. On PostgreSQL the claim and the work run under a session advisory lock
(``pg_try_advisory_lock``): an instance still working when the next interval elapses keeps the others
out, so runs never overlap. On SQLite the claim's ``BEGIN IMMEDIATE`` is the cluster-wide lock (one host);
a run longer than the interval could overlap the next, which pruning tolerates (its deletes are
idempotent). ``runs`` counts the runs of the whole cluster (the tests count it).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select, text, update

from .dialects import insert, inserted
from .engine import Database
from .schema import periodic_runs as P

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:k)")
_UNLOCK = text("SELECT pg_advisory_unlock(:k)")


def lock_key(name: str) -> int:
    """The advisory lock's key of the periodic work ``name`` (stable across processes and releases)."""
    return zlib.crc32(f"smsbridge:periodic:{name}".encode())


@contextmanager
def once(db: Database, name: str, now: float, interval: float) -> Iterator[bool]:
    """Yield whether this process runs ``name`` now: True once per ``interval`` seconds (wall clock,
    shared by hosts) across every process on ``db``; the work goes inside the ``with`` block."""
    conn = db.connection()
    key = lock_key(name)
    if db.postgresql and not conn.execute(_TRY_LOCK, {"k": key}).scalar():
        yield False  # another instance is running it right now
        return
    try:
        with db.transaction() as c:
            claimed = c.execute(update(P).where(P.c.name == name, P.c.ran_at <= now - interval)
                                .values(ran_at=now, runs=P.c.runs + 1)).rowcount == 1
            if not claimed and c.execute(select(P.c.name).where(P.c.name == name)).first() is None:
                claimed = inserted(c, insert(c, P).values(name=name, ran_at=now, runs=1).on_conflict_do_nothing())
        yield claimed
    finally:
        if db.postgresql:
            conn.execute(_UNLOCK, {"k": key})


def runs(db: Database, name: str) -> int:
    """How many times ``name`` ran across the cluster (0: never)."""
    n = db.connection().execute(select(P.c.runs).where(P.c.name == name)).scalar()
    return int(n or 0)
