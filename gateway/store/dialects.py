"""What differs between the store's two databases, in one place: the dialect's ``INSERT`` (for
``ON CONFLICT … DO NOTHING``, which SQLite and PostgreSQL both have but Core's generic insert does not)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

#: the dialect's insert construct, by dialect name
INSERTS: dict[str, Callable[[sa.Table], Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's ``INSERT`` for ``table`` (with ``on_conflict_do_nothing``)."""
    return INSERTS[conn.dialect.name](table)


def inserted(conn: sa.Connection, stmt: Any) -> bool:
    """Run ``stmt`` (an ``INSERT … ON CONFLICT DO NOTHING`` of one row); whether it inserted the row. On
    PostgreSQL SQLAlchemy adds ``RETURNING id`` to a one-row insert, which leaves ``rowcount`` at -1: ask
    for a returned column instead."""
    if conn.dialect.name == "sqlite":
        return bool(conn.execute(stmt).rowcount == 1)
    table = stmt.table
    return conn.execute(stmt.returning(*table.primary_key.columns)).first() is not None


def floor_div(conn: sa.Connection, expr: Any, width: float) -> Any:
    """``floor(expr / width)`` as an integer: SQLite's CAST truncates (``expr`` ≥ 0 here), PostgreSQL's
    rounds, so it floors first."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.floor(expr / width), sa.Integer)
    return sa.cast(expr / width, sa.Integer)
