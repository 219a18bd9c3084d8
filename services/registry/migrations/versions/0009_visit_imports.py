"""Bulk visits through the import: an import job has a kind (households or visits); a visit
may carry the external_ref of its import line (the idempotency key) and that line's digest.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("import_job", sa.Column("kind", sa.Text, nullable=False,
                                          server_default="households"))
    op.create_check_constraint("ck_import_job_kind", "import_job",
                               "kind in ('households', 'visits')")
    # Adding nullable columns rewrites no row: the visit's append-only trigger is not involved.
    op.add_column("visit", sa.Column("external_ref", sa.Text))
    op.add_column("visit", sa.Column("import_hash", sa.Text))
    op.create_unique_constraint("uq_visit_external_ref", "visit", ["external_ref"])


def downgrade() -> None:
    op.drop_constraint("uq_visit_external_ref", "visit", type_="unique")
    op.drop_column("visit", "import_hash")
    op.drop_column("visit", "external_ref")
    op.drop_constraint("ck_import_job_kind", "import_job", type_="check")
    op.drop_column("import_job", "kind")
