"""Initial eligibility schema: platform tables, households, classifications, transitions, jobs.

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

NOW = sa.func.now()


def upgrade() -> None:
    create_platform_tables(op.get_bind())
    op.create_table(
        "household",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("area_type", sa.Text, nullable=False),
        sa.Column("province_code", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("village", sa.Text, nullable=False),
        sa.Column("head_name", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("member_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("registry_version", sa.Integer, nullable=False),
        sa.Column("last_event_id", sa.Text, nullable=False),
        sa.Column("survey", JSONB),
        sa.Column("survey_date", sa.Date),
        sa.Column("survey_event_id", sa.Text),
        sa.Column("current_classification_id", UUID(as_uuid=False)),
        sa.Column("current_category", sa.Text),
        sa.Column("current_ruleset_id", sa.Text),
        sa.Column("current_fingerprint", sa.Text),
        sa.Column("recognized_classification_id", UUID(as_uuid=False)),
        sa.Column("recognized_category", sa.Text),
        sa.Column("recognized_on", sa.Date),
        sa.Column("recognized_deprived", JSONB),
        sa.Column("recognized_ruleset_id", sa.Text),
        sa.Column("escaped_poverty_on", sa.Date),
        sa.Column("just_escaped_until", sa.Date),
        sa.Column("programs", JSONB),
        sa.Column("programs_as_of", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_index("ix_household_commune_code", "household", ["commune_code"])
    op.create_index("ix_household_survey_date", "household", ["survey_date"])
    op.create_index("ix_household_current_ruleset_id", "household", ["current_ruleset_id"])
    op.create_index("ix_household_just_escaped_until", "household", ["just_escaped_until"])

    op.create_table(
        "classification",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("previous_category", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="provisional"),
        sa.Column("ruleset_id", sa.Text, nullable=False),
        sa.Column("ruleset_digest", sa.Text),
        sa.Column("survey_id", sa.Text),
        sa.Column("survey_date", sa.Date),
        sa.Column("review_round", sa.Text),
        sa.Column("area_type", sa.Text, nullable=False),
        sa.Column("province_code", sa.Text, nullable=False),
        sa.Column("commune_code", sa.Text, nullable=False),
        sa.Column("village", sa.Text, nullable=False),
        sa.Column("head_name", sa.Text, nullable=False),
        sa.Column("explanation", JSONB, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("trigger_event_id", sa.Text),
        sa.Column("reevaluation_job_id", UUID(as_uuid=False)),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("recognized_at", sa.DateTime(timezone=True)),
        sa.Column("posting_id", sa.Text),
        sa.Column("superseded_at", sa.DateTime(timezone=True)),
        sa.Column("superseded_by", UUID(as_uuid=False)),
        sa.CheckConstraint("status in ('provisional', 'recognized', 'superseded')",
                           name="status"),
        sa.CheckConstraint("category in ('poor', 'near_poor', 'middle', 'not_poor', "
                           "'incomplete')", name="category"),
    )
    op.create_index("ix_classification_household_id", "classification", ["household_id"])
    op.create_index("ix_classification_listing", "classification",
                    ["commune_code", "status", "category"])

    op.create_table(
        "transition",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("household_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("from_category", sa.Text, nullable=False),
        sa.Column("to_category", sa.Text, nullable=False),
        sa.Column("from_classification_id", UUID(as_uuid=False)),
        sa.Column("to_classification_id", UUID(as_uuid=False), nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
        sa.Column("just_escaped_until", sa.Date),
        sa.Column("posting_id", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    )
    op.create_index("ix_transition_household_id", "transition", ["household_id"])

    op.create_table(
        "reevaluation_job",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("ruleset_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="running"),
        sa.Column("total", sa.Integer, nullable=False, server_default="0"),
        sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("changed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cursor", sa.Text),
        sa.Column("ruleset_digest", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("requested_by", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.CheckConstraint("status in ('running', 'done', 'failed')", name="status"),
    )


def downgrade() -> None:
    for name in ("reevaluation_job", "transition", "classification", "household"):
        op.drop_table(name)
    drop_platform_tables(op.get_bind())
