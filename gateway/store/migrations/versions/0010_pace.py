"""Traffic control: token buckets shared by every process, and each message's expiry.

Revision ID: 0010_pace
Revises: 0009_failover
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_pace"
down_revision = "0009_failover"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pace",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("horizon", sa.Double(), nullable=False, server_default=sa.text("0")),
        sa.Column("paused_until", sa.Double(), nullable=False, server_default=sa.text("0")),
        sa.Column("taken", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("messages", sa.Column("expires_at", sa.Double()))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("expires_at")
    op.drop_table("pace")
