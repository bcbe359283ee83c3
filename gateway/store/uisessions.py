"""The admin UI's live sessions (``ui_sessions``): opened at login, closed at logout, honoured by every
process that shares the store (a signed cookie alone is not enough: logout revokes it everywhere)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from .engine import Database
from .schema import ui_sessions as U


def open_session(db: Database, sid: str, now: float, until: float) -> None:
    """Record ``sid`` as live until ``until``; expired sessions are forgotten on the way."""
    with db.transaction(relaxed=True) as c:
        c.execute(delete(U).where(U.c.until <= now))
        c.execute(insert(U).values(sid=sid, until=until))


def is_live(db: Database, sid: str, now: float) -> bool:
    return db.connection().execute(select(U.c.until).where(U.c.sid == sid, U.c.until > now)).first() is not None


def close_session(db: Database, sid: str) -> None:
    with db.transaction(relaxed=True) as c:
        c.execute(delete(U).where(U.c.sid == sid))
