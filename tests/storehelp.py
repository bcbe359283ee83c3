"""SQL for tests, in one place: a look into the database behind the store's API (assertions on rows,
fault injection with triggers) and a scratch table for engine tests. The bridge's own code never does this."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, Text, func, select, update

from gateway.store.engine import Database
from gateway.store.schema import metadata

scratch_metadata = MetaData()
scratch_t = Table("t", scratch_metadata, Column("id", Integer, primary_key=True), Column("v", Text))


def scratch(path: str, **kw: Any) -> Database:
    """A database without the bridge's schema, with one table ``t (id, v)``."""
    db = Database(path, migrate=False, **kw)
    with db.transaction() as c:
        scratch_metadata.create_all(c)
    return db


def _table(name: str) -> Table:
    return metadata.tables[name] if name in metadata.tables else scratch_metadata.tables[name]


def _where(table: Table, where: dict[str, Any]) -> list[Any]:
    """``col=value`` (``None``: IS NULL; a tuple: IN) as Core conditions on ``table``."""
    out = []
    for name, v in where.items():
        col = table.c[name]
        out.append(col.is_(None) if v is None else col.in_(v) if isinstance(v, tuple) else col == v)
    return out


def db_count(db: Database, table: str, **where: Any) -> int:
    """Rows of ``table`` matching ``where`` (see :func:`_where`)."""
    t = _table(table)
    return int(db.connection().execute(select(func.count()).select_from(t).where(*_where(t, where))).scalar_one())


class Rec(tuple):  # type: ignore[type-arg]
    """A row readable by index, by column name (``r["state"]``) and as an attribute (``r.state``)."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], keys: Sequence[str]) -> Rec:
        rec = super().__new__(cls, values)
        rec._index = {k: i for i, k in enumerate(keys)}
        return rec

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        return super().__getitem__(self._index[key] if isinstance(key, str) else key)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None

    def keys(self) -> list[str]:
        return list(self._index)


def db_rows(db: Database, table: str, *columns: str, **where: Any) -> list[Rec]:
    """Rows of ``table`` (all columns, or ``columns``) matching ``where``, by id."""
    t = _table(table)
    cols = [t.c[c] for c in columns] or [t]
    order = t.c.id if "id" in t.c else t.c[t.primary_key.columns.keys()[0]]
    result = db.connection().execute(select(*cols).where(*_where(t, where)).order_by(order))
    keys = list(result.keys())
    return [Rec(r, keys) for r in result]


def db_values(db: Database, table: str, column: str, **where: Any) -> list[Any]:
    """One column of the matching rows, by id."""
    return [r[0] for r in db_rows(db, table, column, **where)]


def db_value(db: Database, table: str, column: str, **where: Any) -> Any:
    """One column of the first matching row (by id); None if there is none."""
    got = db_values(db, table, column, **where)
    return got[0] if got else None


def db_row(db: Database, table: str, **where: Any) -> Any:
    """The first matching row (by id) as a mapping, or None."""
    got = db_rows(db, table, **where)
    return got[0] if got else None


def db_age(db: Database, seconds: float) -> None:
    """Make everything recorded look ``seconds`` older (retention tests)."""
    with db.transaction() as c:
        for t, col in (("messages", "updated_at"), ("submissions", "updated_at"), ("upstream_attempts", "at")):
            table = metadata.tables[t]
            c.execute(update(table).values({col: table.c[col] - seconds}))


def db_set(db: Database, table: str, row_id: int | None, **values_: Any) -> int:
    """Overwrite columns of one row (``row_id``) or of every row (None); returns the rows changed."""
    t = _table(table)
    stmt = update(t).values(**values_)
    if row_id is not None:
        stmt = stmt.where(t.c.id == row_id)
    with db.transaction() as c:
        return int(c.execute(stmt).rowcount)


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


def raw_messages_count(path: str) -> int:
    """Messages in the main file of a SQLite database read without its WAL (a plain copy of the file alone):
    0 when the table is not even there yet."""
    conn = sqlite3.connect(path)
    try:
        if not conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'messages'").fetchone()[0]:
            return 0
        return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        conn.close()
