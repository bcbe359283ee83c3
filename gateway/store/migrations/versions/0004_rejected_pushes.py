"""Rejected pushes: report and inbound bodies the bridge could not parse, kept for inspection.

Revision ID: 0004_rejected_pushes
Revises: 0003_idempotency
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_rejected_pushes"
down_revision = "0003_idempotency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejected_pushes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ref", sa.Text()),
        sa.Column("content_type", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary()),
        sa.Column("created_at", sa.Double(), nullable=False),
    )
    op.create_index("rejected_pushes_created", "rejected_pushes", ["created_at"])


def downgrade() -> None:
    op.drop_index("rejected_pushes_created", "rejected_pushes")
    op.drop_table("rejected_pushes")
