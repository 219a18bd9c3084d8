"""Indexes on where households live: the dashboard's aggregates over a commune's or a province's
timeline entries start from them (then the timeline's household index).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_household_area_commune_code", "household_area", ["commune_code"])
    op.create_index("ix_household_area_province_code", "household_area", ["province_code"])


def downgrade() -> None:
    op.drop_index("ix_household_area_province_code", table_name="household_area")
    op.drop_index("ix_household_area_commune_code", table_name="household_area")
