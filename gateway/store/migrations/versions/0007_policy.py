"""The auto-reply limit counts the replies to one number in a window: an index on (to_number, created_at).

Revision ID: 0007_policy
Revises: 0006_console
"""

from __future__ import annotations

from alembic import op

revision = "0007_policy"
down_revision = "0006_console"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("inbound_replies_to", "inbound_replies", ["to_number", "created_at"])


def downgrade() -> None:
    op.drop_index("inbound_replies_to", table_name="inbound_replies")
