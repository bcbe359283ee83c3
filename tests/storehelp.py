"""SQL for tests, in one place: a look into the database behind the store's API (assertions on rows,
fault injection with triggers) and a scratch table for engine tests. The bridge's own code never does this."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, Text

from gateway.store.engine import Database

scratch_metadata = MetaData()
scratch_t = Table("t", scratch_metadata, Column("id", Integer, primary_key=True), Column("v", Text))


def scratch(path: str, **kw: Any) -> Database:
    """A database without the bridge's schema, with one table ``t (id, v)``."""
    db = Database(path, migrate=False, **kw)
    with db.transaction() as c:
        scratch_metadata.create_all(c)
    return db


def _cursor(db: Database, sql: str, params: Sequence[Any] | dict[str, Any]) -> sqlite3.Cursor:
    cur = db.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    cur.row_factory = sqlite3.Row
    return cur.execute(sql, params)


def q(db: Database, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
    """All rows of a query (by index or column name)."""
    return _cursor(db, sql, params).fetchall()


def q1(db: Database, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
    """The first row of a query, or None."""
    return _cursor(db, sql, params).fetchone()


def run(db: Database, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
    """Run one statement (autocommit unless in a transaction); return its row count."""
    return _cursor(db, sql, params).rowcount


DATA = Path(__file__).parent / "data"


def build_v6(path: str, rows: bool = True) -> None:
    """A database file exactly as today's main (schema version 6, before Alembic) leaves it, with a few rows."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript((DATA / "schema_v6.sql").read_text())
        if rows:
            conn.executescript((DATA / "rows_v6.sql").read_text())
        conn.commit()
    finally:
        conn.close()


def build_legacy(path: str, version: int) -> None:
    """A database at an older schema version (1-5), as the old migrations left it."""
    from gateway.store.migrations.legacy import MIGRATIONS, split_statements

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at REAL NOT NULL)")
        for v, name, sql in MIGRATIONS[:version]:
            for stmt in split_statements(sql):
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 1700000000.0)", (v, name))
    finally:
        conn.close()
