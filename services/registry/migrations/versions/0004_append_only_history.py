"""History is append-only: household_version, survey refuse UPDATE, DELETE and TRUNCATE (a trigger, for every
role); the outbox's events are immutable and only sent rows may be deleted.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from alembic import op

from shared.db import drop_append_only, make_append_only

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

HISTORY = ('household_version', 'survey')


def upgrade() -> None:
    make_append_only(op.get_bind(), *HISTORY)


def downgrade() -> None:
    drop_append_only(op.get_bind(), *HISTORY)
