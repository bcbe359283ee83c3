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
- A database at a revision this bridge does not know (written by a newer bridge) is refused
  (:class:`NewerSchema`): nothing is changed.

On PostgreSQL the same runs inside one transaction (PostgreSQL runs DDL in transactions too) under a
transaction-scoped advisory lock, so bridges starting at once on one new database take turns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

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


#: the advisory lock key migrations take on PostgreSQL (any constant: "smsbridge" folded into a bigint)
MIGRATION_LOCK = 0x736D7362726964


class NewerSchema(Exception):
    """The database is at a revision this bridge does not know; ``str()`` says what to run."""

    def __init__(self, where: str, revision: str) -> None:
        self.reason = (f"it is at schema revision {revision!r}, newer than this bridge knows (its newest is "
                       f"{head()!r}): run the smsbridge release that migrated it (or newer), or restore a "
                       f"backup taken before that upgrade")
        super().__init__(f"the database {where}: {self.reason}")
        self.revision = revision


def _known(rev: str) -> bool:
    try:
        return script().get_revision(rev) is not None
    except CommandError:
        return False


def upgrade(db: Database) -> list[str]:
    """Bring ``db`` to the head revision; return the revisions run (``["create_all"]`` for a new one).
    Raises :class:`NewerSchema` (nothing changed) on a database a newer bridge migrated."""
    with db.transaction() as conn:
        if not conn.in_transaction():  # SQLAlchemy-level: Alembic then leaves BEGIN/COMMIT to the engine
            conn.begin()
        if conn.dialect.name == "postgresql":  # one migrator at a time; released at COMMIT
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        names = set(sa.inspect(conn).get_table_names())
        ctx = MigrationContext.configure(conn, opts={"target_metadata": metadata})
        if not names & ({"alembic_version", "schema_migrations"} | set(metadata.tables)):
            metadata.create_all(conn)
            ctx.stamp(script(), "head")
            return ["create_all"]
        current = ctx.get_current_revision()
        if current is not None and not _known(current):
            raise NewerSchema(db.path, current)
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
