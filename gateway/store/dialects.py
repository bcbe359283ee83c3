"""What differs between the store's two databases, in one place: the dialect's ``INSERT`` (for
``ON CONFLICT … DO NOTHING``, which SQLite and PostgreSQL both have but Core's generic insert does not)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's ``INSERT`` for ``table`` (with ``on_conflict_do_nothing``)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
