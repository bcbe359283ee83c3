"""Alembic migrations, run in-process when a :class:`~gateway.store.engine.Database` opens.

No ``alembic.ini`` and no ``env.py``: the bridge drives Alembic's ``MigrationContext`` directly on the
connection the engine already holds, inside the engine's own ``BEGIN IMMEDIATE`` transaction, so two
processes opening a new file at once take turns and a failed upgrade leaves nothing half done (SQLite
runs DDL in transactions). ``alembic.command`` would open its own transaction handling through ``env.py``,
which on a driver in autocommit would commit ours early.

- An empty database gets the head schema at once (``schema.metadata.create_all``) and is stamped head.
- A database written by an older bridge (``schema_migrations``, versions 1-6) runs the baseline revision,
  which replays only the versions it lacks, then the later revisions.
- A database under Alembic runs the revisions it has not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory

from ..schema import metadata

if TYPE_CHECKING:
    from ..engine import Database

_DIR = Path(__file__).parent
_script: ScriptDirectory | None = None  # parsed once per process: its revision map is memoised


def script() -> ScriptDirectory:
    """The revisions (gateway/store/migrations/versions)."""
    global _script
    if _script is None:
        _script = ScriptDirectory(str(_DIR), version_locations=[str(_DIR / "versions")])
    return _script


def head() -> str:
    """The newest revision."""
    out = script().get_current_head()
    assert out is not None
    return out


def upgrade(db: Database) -> list[str]:
    """Bring ``db`` to the head revision; return the revisions run (``["create_all"]`` for a new one)."""
    with db.transaction() as conn:
        if not conn.in_transaction():  # SQLAlchemy-level: Alembic then leaves BEGIN/COMMIT to the engine
            conn.begin()
        names = set(sa.inspect(conn).get_table_names())
        ctx = MigrationContext.configure(conn, opts={"target_metadata": metadata})
        if not names & ({"alembic_version", "schema_migrations"} | set(metadata.tables)):
            metadata.create_all(conn)
            ctx.stamp(script(), "head")
            return ["create_all"]
        current = ctx.get_current_revision()
        steps = script()._upgrade_revs("head", current)
        if not steps:
            return []
        ctx = MigrationContext.configure(
            conn, opts={"target_metadata": metadata, "fn": lambda rev, _ctx: script()._upgrade_revs("head", rev)})
        with Operations.context(ctx):
            ctx.run_migrations()
        return [s.revision.revision for s in steps]


def current(db: Database) -> str | None:
    """The revision ``db`` is at."""
    return MigrationContext.configure(db.connection()).get_current_revision()
