"""The ops probe table (GET /ops/ready writes to it), created on demand by the old bridge.

Revision ID: 0002_ops_probe
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ops_probe"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("ops_probe"):  # an older bridge's readiness probe made it
        return
    op.create_table(
        "ops_probe",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("at", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ops_probe")
