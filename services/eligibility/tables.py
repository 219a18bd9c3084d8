"""Eligibility tables: the household inputs, classifications, transitions, re-evaluation jobs,
the active rule sets."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase

from shared.db import new_metadata, platform_tables


class Base(DeclarativeBase):
    """Declarative base of this service's tables (its own database)."""

    metadata = new_metadata()


meta = Base.metadata
platform = platform_tables(meta)

_now = sa.func.now()

# The registry's household as eligibility needs it (from the snapshot every registry event
# carries), the current survey, the latest decision and the recognized standing.
household = sa.Table(
    "household", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("area_type", sa.Text, nullable=False),
    sa.Column("province_code", sa.Text, nullable=False),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("village", sa.Text, nullable=False),
    sa.Column("head_name", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("member_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("registry_version", sa.Integer, nullable=False),
    sa.Column("last_event_id", sa.Text, nullable=False),
    sa.Column("survey", JSONB),
    sa.Column("survey_date", sa.Date, index=True),
    sa.Column("survey_event_id", sa.Text),
    sa.Column("current_classification_id", UUID(as_uuid=False)),
    sa.Column("current_category", sa.Text),
    sa.Column("current_ruleset_id", sa.Text, index=True),
    sa.Column("current_fingerprint", sa.Text),
    sa.Column("recognized_classification_id", UUID(as_uuid=False)),
    sa.Column("recognized_category", sa.Text),
    sa.Column("recognized_on", sa.Date),
    sa.Column("recognized_deprived", JSONB),
    sa.Column("recognized_ruleset_id", sa.Text),
    sa.Column("escaped_poverty_on", sa.Date),
    sa.Column("just_escaped_until", sa.Date, index=True),
    sa.Column("programs", JSONB),
    sa.Column("programs_as_of", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

# Every decision, with its explanation; status provisional → recognized → superseded.
classification = sa.Table(
    "classification", meta,
    sa.Column("id", UUID(as_uuid=False), primary_key=True),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
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
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("recognized_at", sa.DateTime(timezone=True)),
    sa.Column("posting_id", sa.Text),
    sa.Column("superseded_at", sa.DateTime(timezone=True)),
    sa.Column("superseded_by", UUID(as_uuid=False)),
    sa.CheckConstraint("status in ('provisional', 'recognized', 'superseded')", name="status"),
    sa.CheckConstraint("category in ('poor', 'near_poor', 'middle', 'not_poor', 'incomplete')",
                       name="category"),
    sa.Index("ix_classification_listing", "commune_code", "status", "category"),
)

# Recorded changes of recognized standing.
transition = sa.Table(
    "transition", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("from_category", sa.Text, nullable=False),
    sa.Column("to_category", sa.Text, nullable=False),
    sa.Column("from_classification_id", UUID(as_uuid=False)),
    sa.Column("to_classification_id", UUID(as_uuid=False), nullable=False),
    sa.Column("occurred_on", sa.Date, nullable=False),
    sa.Column("just_escaped_until", sa.Date),
    sa.Column("posting_id", sa.Text),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
)

# Re-evaluation of every household a rule set affects, in batches, resumable from `cursor`.
reevaluation_job = sa.Table(
    "reevaluation_job", meta,
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.CheckConstraint("status in ('running', 'done', 'failed')", name="status"),
)

# The rule sets every replica decides by: one row per rule set, the file as read. A reload
# replaces them in its transaction; a replica whose rules in memory have other digests rebuilds
# them from `content` before it decides (no shared file system needed).
active_ruleset = sa.Table(
    "active_ruleset", meta,
    sa.Column("ruleset_id", sa.Text, primary_key=True),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("activated_by", sa.Text),
)

# Ad-hoc (regular) reviews: a household listed for re-survey because a shock hit its area,
# open until a survey on or after the shock's day arrives. One per household and shock.
review = sa.Table(
    "review", meta,
    sa.Column("id", UUID(as_uuid=False), primary_key=True),
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
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False, server_default=_now),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("survey_id", sa.Text),
    sa.Column("survey_date", sa.Date),
    sa.Column("survey_event_id", sa.Text),
    sa.UniqueConstraint("household_id", "shock_id", name="uq_review_household_shock"),
    sa.CheckConstraint("status in ('open', 'closed')", name="status"),
    sa.Index("ix_review_open", "household_id", postgresql_where=sa.text("status = 'open'")),
    sa.Index("ix_review_commune", "commune_code", "status"),
)
