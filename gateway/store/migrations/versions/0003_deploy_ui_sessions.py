"""The admin UI's live sessions in the store, so every process of a ``--workers`` bridge honours them.

Revision ID: 0003_deploy_ui_sessions
Revises: 0002_ops_probe
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_deploy_ui_sessions"
down_revision = "0002_ops_probe"
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
