"""Initial disbursement schema: platform tables and the disbursement tables.

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


def _business_tables():
    from services.disbursement import tables

    return [t for t in tables.meta.sorted_tables if t not in tables.platform.tables]


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    for table in _business_tables():
        table.create(op.get_bind())


def downgrade() -> None:
    for table in reversed(_business_tables()):
        table.drop(op.get_bind())
    drop_platform_tables(op.get_bind())
