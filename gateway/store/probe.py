"""The readiness probe's write (``ops_probe``): proves the database file and its folder are writable."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, update

from .engine import Database
from .schema import ops_probe

_TOUCH = update(ops_probe).where(ops_probe.c.id == 1).values(at=bindparam("at"))
_FIRST = insert(ops_probe).values(id=1, at=bindparam("at"))


def touch(db: Database, now: float) -> None:
    """Write the probe's one row (a real write, committed)."""
    with db.transaction() as c:
        if c.execute(_TOUCH, {"at": now}).rowcount == 0:
            c.execute(_FIRST, {"at": now})
