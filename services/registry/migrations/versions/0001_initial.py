"""Initial registry schema: platform tables, household, member.

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
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
    )
    op.create_index("ix_household_province_code", "household", ["province_code"])
    op.create_index("ix_household_commune_code", "household", ["commune_code"])
    op.create_table(
        "member",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("household_id", UUID(as_uuid=False), sa.ForeignKey("household.id"),
                  nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("full_name", sa.Text, nullable=False),
        sa.Column("national_id", sa.Text, nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=False),
        sa.Column("sex", sa.Text, nullable=False),
        sa.Column("relation", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_index("ix_member_household_id", "member", ["household_id"])
    op.create_index("uq_member_active_national_id", "member", ["national_id"], unique=True,
                    postgresql_where=sa.text("active"))


def downgrade() -> None:
    op.drop_table("member")
    op.drop_table("household")
    drop_platform_tables(op.get_bind())
