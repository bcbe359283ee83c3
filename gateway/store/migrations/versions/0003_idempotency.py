"""Idempotency keys, duplicate fingerprints and custom messageIds (issue 13 items 1, 2, 9).

Revision ID: 0003_idempotency
Revises: 0002_ops_probe
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_idempotency"
down_revision = "0002_ops_probe"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer()),
        sa.Column("content_type", sa.Text()),
        sa.Column("body", sa.LargeBinary()),
        sa.Column("ref", sa.Text()),
        sa.Column("message_id", sa.Text()),
        sa.Column("replays", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("lease_until", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.UniqueConstraint("caller", "key", name="idempotency_caller_key"),
    )
    op.create_index("idempotency_expires", "idempotency", ["expires_at"])
    op.create_index("idempotency_message", "idempotency", ["caller", "message_id"])


def downgrade() -> None:
    op.drop_table("idempotency")
