"""Failed logins shared by every process: the login throttle's counts and locks.

Revision ID: 0011_throttle
Revises: 0010_pace
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_throttle"
down_revision = "0010_pace"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Double(), nullable=False, server_default=sa.text("0")),
        sa.Column("last", sa.Double(), nullable=False),
    )
    op.create_index("login_failures_locked", "login_failures", ["locked_until"])
    op.create_index("login_failures_last", "login_failures", ["last"])


def downgrade() -> None:
    op.drop_table("login_failures")
