"""Disaster shocks declared by province and national officers (append-only).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.db import drop_append_only, make_append_only

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = UUID(as_uuid=False)


def upgrade() -> None:
    op.create_table(
        "shock",
        sa.Column("id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("areas", JSONB, nullable=False),
        sa.Column("province_codes", ARRAY(sa.Text), nullable=False),
        sa.Column("commune_codes", ARRAY(sa.Text), nullable=False),
        sa.Column("review_due_on", sa.Date, nullable=False),
        sa.Column("declared_by", sa.Text, nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_shock"),
        sa.UniqueConstraint("seq", name="uq_shock_seq"),
    )
    op.create_index("ix_shock_communes", "shock", ["commune_codes"], postgresql_using="gin")
    make_append_only(op.get_bind(), "shock")


def downgrade() -> None:
    drop_append_only(op.get_bind(), "shock")
    op.drop_table("shock")
