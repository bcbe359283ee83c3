"""Failover: which upstream carried each message (or may hold it while its outcome there is unknown).

Revision ID: 0009_failover
Revises: 0008_cluster
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_failover"
down_revision = "0008_cluster"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("upstream", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("upstream")
