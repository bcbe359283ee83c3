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
