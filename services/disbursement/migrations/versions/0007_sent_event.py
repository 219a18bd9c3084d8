"""Instructions remember the event of their `sent` status change: the partner's answers hang
under it on the household's timeline (no orphan entry).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("instruction", sa.Column("sent_event_id", sa.Text))


def downgrade() -> None:
    op.drop_column("instruction", "sent_event_id")
