"""Failover: which upstream carried each message (or may hold it while its outcome there is unknown).

Revision ID: 0006_failover
Revises: 0005_ui_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_failover"
down_revision = "0005_ui_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("upstream", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("upstream")
