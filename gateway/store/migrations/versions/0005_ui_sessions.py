"""The admin UI's live sessions in the store, so every process of a ``--workers`` bridge honours them.

Revision ID: 0005_ui_sessions
Revises: 0004_rejected_pushes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_ui_sessions"
down_revision = "0004_rejected_pushes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("sid", sa.Text(), primary_key=True),
        sa.Column("until", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ui_sessions")
