"""SQL for tests, in one place: a look into the database behind the store's API (assertions on rows,
fault injection with triggers) and a scratch table for engine tests. The bridge's own code never does this."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
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
