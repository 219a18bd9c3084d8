"""Platform tables v4: the operator audit log (who replayed, discarded, retried or republished
what, when and why).

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-10
"""

import sqlalchemy as sa
from alembic import op

from shared.db import create_operator_action_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_operator_action_table(op.get_bind())


def downgrade() -> None:
    op.get_bind().execute(sa.text("DROP TABLE IF EXISTS operator_action"))
