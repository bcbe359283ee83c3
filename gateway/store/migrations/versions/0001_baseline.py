"""Baseline: the schema as of the old migration 6 (before Alembic).

On SQLite it replays the old migrations a database lacks (an empty one gets all six; one written by an
older bridge only the missing versions; today's main: none), so those databases upgrade in place.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

from alembic import op

from gateway.store.migrations import legacy

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        raise RuntimeError("the baseline replays SQLite migrations: a new PostgreSQL database is created at head")
    legacy.replay(bind)


def downgrade() -> None:
    raise NotImplementedError("no downgrade below the baseline")
