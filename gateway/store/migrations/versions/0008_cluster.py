"""Periodic work done once per interval across every bridge on one database (``periodic_runs``).

Revision ID: 0008_cluster
Revises: 0007_policy
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_cluster"
down_revision = "0007_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "periodic_runs",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("ran_at", sa.Double(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_table("periodic_runs")
