"""Postings record why a national admin closed one before its public window ended.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("posting", sa.Column("close_reason", sa.Text))


def downgrade() -> None:
    op.drop_column("posting", "close_reason")
