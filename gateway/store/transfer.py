"""``python app.py migrate-to postgresql://…``: the whole SQLite record copied into a PostgreSQL database.

The target is brought to the head schema first (as a bridge's start would), the source too. Every table of
the schema is copied row by row with its ids, in one target transaction (all or nothing) read from one
source transaction (one consistent state: stop the bridges first, or whatever they accept afterwards stays
behind in the file). Each identity sequence is then set past the largest copied id, so new rows get fresh
ids. A target that already holds a record is refused (two records would mix and their ids collide) unless
``force``, which empties it first.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from .engine import Database
from .schema import metadata

CHUNK = 1000
# written by any start or probe of a bridge, not part of a record: a target holding only these is empty
_NOT_RECORD = {"ops_probe", "ui_sessions", "periodic_runs"}


class TransferRefused(Exception):
    """The copy was not made; ``str()`` is the sentence for the operator."""


def holdings(db: Database) -> dict[str, int]:
    """Rows per table of ``db`` that belong to a record (tables with none left out)."""
    conn = db.connection()
    counts = {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
              for t in metadata.sorted_tables if t.name not in _NOT_RECORD}
    return {k: n for k, n in counts.items() if n}


def copy_record(source: Database, target: Database, force: bool = False,
                progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every table of ``source`` into ``target`` (PostgreSQL); return the rows copied per table."""
    if not target.postgresql:
        raise TransferRefused(f"{target.path}: the target must be a PostgreSQL database (postgresql://…)")
    if source.url == target.url:
        raise TransferRefused("the source and the target are the same database")
    held = holdings(target)
    if held and not force:
        what = ", ".join(f"{n} {t}" for t, n in held.items())
        raise TransferRefused(f"{target.path} already holds a record ({what}); copying into it would mix two "
                              "records: use an empty database, or --force to empty this one first")
    tables = metadata.sorted_tables  # parents before children (foreign keys)
    copied: dict[str, int] = {}
    with source.transaction() as src, target.transaction() as dst:
        if force:
            dst.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY")
        for table in tables:
            n = 0
            rows = src.execute(sa.select(table).order_by(*table.primary_key.columns))
            while chunk := rows.fetchmany(CHUNK):
                dst.execute(sa.insert(table), [dict(r._mapping) for r in chunk])
                n += len(chunk)
            copied[table.name] = n
            if progress:
                progress(table.name, n)
        for table in tables:
            if "id" in table.c and table.c.id.primary_key and table.c.id.autoincrement:
                dst.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                    f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM \"{table.name}\"")
    return copied
