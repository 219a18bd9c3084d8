"""Ad-hoc reviews opened by a declared shock (one per household and shock).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review",
        sa.Column("id", UUID(as_uuid=False), nullable=False),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default="shock"),
        sa.Column("shock_id", sa.Text, nullable=False),
        sa.Column("shock_type", sa.Text, nullable=False),
        sa.Column("shock_title", sa.Text, nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("province_code", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("village", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("survey_id", sa.Text),
        sa.Column("survey_date", sa.Date),
        sa.Column("survey_event_id", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_review"),
        sa.UniqueConstraint("household_id", "shock_id", name="uq_review_household_shock"),
        sa.CheckConstraint("status in ('open', 'closed')", name="ck_review_status"),
    )
    op.create_index("ix_review_open", "review", ["household_id"],
                    postgresql_where=sa.text("status = 'open'"))
    op.create_index("ix_review_commune", "review", ["commune_code", "status"])


def downgrade() -> None:
    op.drop_table("review")
