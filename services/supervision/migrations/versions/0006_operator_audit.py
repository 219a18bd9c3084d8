"""Platform tables v4: the operator audit log (who replayed, discarded, retried or republished
what, when and why).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from shared.db import create_operator_action_table, make_append_only

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_operator_action_table(op.get_bind())
    make_append_only(op.get_bind(), "operator_action")  # the audit log is never rewritten


def downgrade() -> None:
    op.get_bind().execute(sa.text("DROP TABLE IF EXISTS operator_action"))
