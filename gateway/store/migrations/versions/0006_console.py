"""The console's dashboard: an index on the messages' creation time (with the status group and state, so the counts
of a time range are read from the index alone).

Revision ID: 0006_console
Revises: 0005_ui_sessions
"""

from __future__ import annotations

from alembic import op

revision = "0006_console"
down_revision = "0005_ui_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("messages_created", "messages", ["created_at", "status_group_name", "state"])


def downgrade() -> None:
    op.drop_index("messages_created", table_name="messages")
