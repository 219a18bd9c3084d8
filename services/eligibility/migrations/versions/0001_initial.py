"""Initial eligibility schema: platform tables and the household projection.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from shared.db import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    op.create_table(
        "household",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("area_type", sa.Text, nullable=False),
        sa.Column("province_code", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("village", sa.Text, nullable=False),
        sa.Column("registry_version", sa.Integer, nullable=False),
        sa.Column("last_event_id", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )
    op.create_index("ix_household_commune_code", "household", ["commune_code"])


def downgrade() -> None:
    op.drop_table("household")
    drop_platform_tables(op.get_bind())
