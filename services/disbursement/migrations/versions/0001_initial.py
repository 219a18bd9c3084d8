"""Initial disbursement schema: platform tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

from shared.db import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables(op.get_bind())


def downgrade() -> None:
    drop_platform_tables(op.get_bind())
