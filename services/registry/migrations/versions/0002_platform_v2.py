"""Platform tables v2: outbox rows parked after failed publishes, dead letters that keep raw
header bytes and park a key's later events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from alembic import op

from shared.db import upgrade_platform_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_platform_tables(op.get_bind())


def downgrade() -> None:
    pass  # additive columns and indexes: nothing to undo for the previous code
