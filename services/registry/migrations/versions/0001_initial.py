"""Initial registry schema: platform tables, admin units, households, members, surveys, versions,
import jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.db import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = UUID(as_uuid=False)
TS = sa.DateTime(timezone=True)


def _now(name: str = "created_at") -> sa.Column:
    return sa.Column(name, TS, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    op.create_table(
        "admin_unit",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("parent_code", sa.Text),
        sa.Column("area_type", sa.Text),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("code", name="pk_admin_unit"),
        sa.CheckConstraint("level in ('province', 'commune')", name="ck_admin_unit_level"),
    )
    op.create_index("ix_admin_unit_parent_code", "admin_unit", ["parent_code"])
    op.create_table(
        "household",
        sa.Column("id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("external_ref", sa.Text),
        sa.Column("area_type", sa.Text, nullable=False),
        sa.Column("province_code", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("village", sa.Text, nullable=False),
        sa.Column("address", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("head_name", sa.Text, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("archive_reason", sa.Text),
        sa.Column("verification", JSONB, nullable=False, server_default="[]"),
        sa.Column("possible_duplicates", JSONB, nullable=False, server_default="[]"),
        sa.Column("current_survey_id", ID),
        sa.Column("import_hash", sa.Text),
        sa.Column("created_by", sa.Text),
        _now(),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_household"),
        sa.UniqueConstraint("seq", name="uq_household_seq"),
        sa.UniqueConstraint("external_ref", name="uq_household_external_ref"),
        sa.CheckConstraint("status in ('active', 'archived')", name="ck_household_status"),
        sa.CheckConstraint("area_type in ('rural', 'urban')", name="ck_household_area_type"),
    )
    op.create_index("ix_household_province_code", "household", ["province_code"])
    op.create_index("ix_household_commune_code", "household", ["commune_code"])
    op.create_table(
        "member",
        sa.Column("id", ID, nullable=False),
        sa.Column("household_id", ID, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("full_name", sa.Text, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False),
        sa.Column("national_id", sa.Text, nullable=False),
        sa.Column("date_of_birth", sa.Date, nullable=False),
        sa.Column("sex", sa.Text, nullable=False),
        sa.Column("relation", sa.Text, nullable=False),
        sa.Column("ethnicity", sa.Text),
        sa.Column("disability", sa.Boolean),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("removed_at", TS),
        sa.Column("removed_reason", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_member"),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"],
                                name="fk_member_household_id_household"),
    )
    op.create_index("ix_member_household_id", "member", ["household_id"])
    op.create_index("uq_member_active_national_id", "member", ["national_id"], unique=True,
                    postgresql_where=sa.text("active"))
    op.create_index("ix_member_name_key_dob", "member", ["name_key", "date_of_birth"])
    op.create_table(
        "survey",
        sa.Column("id", ID, nullable=False),
        sa.Column("household_id", ID, nullable=False),
        sa.Column("survey_date", sa.Date, nullable=False),
        sa.Column("review_round", sa.Text, nullable=False),
        sa.Column("income_per_capita_vnd", sa.BigInteger, nullable=False),
        sa.Column("deprivations", JSONB, nullable=False),
        sa.Column("facts", JSONB, nullable=False, server_default="{}"),
        sa.Column("surveyor", sa.Text),
        sa.Column("notes", sa.Text),
        sa.Column("recorded_by", sa.Text),
        sa.Column("import_hash", sa.Text),
        _now(),
        sa.PrimaryKeyConstraint("id", name="pk_survey"),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"],
                                name="fk_survey_household_id_household"),
        sa.CheckConstraint("income_per_capita_vnd >= 0", name="ck_survey_income"),
    )
    op.create_index("ix_survey_household_id", "survey", ["household_id"])
    op.create_table(
        "household_version",
        sa.Column("household_id", ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("changes", JSONB, nullable=False),
        sa.Column("at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("household_id", "version", name="pk_household_version"),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"],
                                name="fk_household_version_household_id_household"),
    )
    op.create_table(
        "import_job",
        sa.Column("id", ID, nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("filename", sa.Text),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("accepted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("message", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_role", sa.Text, nullable=False),
        sa.Column("created_scope", JSONB, nullable=False),
        _now(),
        _now("heartbeat_at"),
        sa.Column("finished_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_import_job"),
        sa.CheckConstraint("status in ('running', 'done', 'failed')", name="ck_import_job_status"),
    )
    op.create_table(
        "import_error",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("external_ref", sa.Text),
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_import_error"),
        sa.ForeignKeyConstraint(["job_id"], ["import_job.id"],
                                name="fk_import_error_job_id_import_job"),
    )
    op.create_index("ix_import_error_job_id", "import_error", ["job_id"])


def downgrade() -> None:
    for table in ("import_error", "import_job", "household_version", "survey", "member",
                  "household", "admin_unit"):
        op.drop_table(table)
    drop_platform_tables(op.get_bind())
