"""Platform tables v3: the inbox keyed by (consumer, source, event id), so another source's ids
cannot collide with ours, and indexed by arrival for retention.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from alembic import op

from shared.db import upgrade_platform_tables_v3

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_platform_tables_v3(op.get_bind())


def downgrade() -> None:
    pass  # the wider key accepts everything the narrower one did
