"""Supervision tables: projections, postings, complaints, community supervision, timeline."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import declarative_base, platform_tables

Base = declarative_base()
platform = platform_tables(Base.metadata)
meta = Base.metadata

_TS = sa.DateTime(timezone=True)


def _created() -> sa.Column:
    return sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now())


# --- projections of other services' events ----------------------------------------------------

classification = sa.Table(
    # The current classification of each household, from eligibility.decisions; a newer decision
    # replaces an older one, `recognized` / `superseded` mark what became of it.
    "classification", meta,
    sa.Column("household_id", sa.Text, primary_key=True),
    sa.Column("classification_id", sa.Text, nullable=False),
    sa.Column("province_code", sa.Text, nullable=False),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("village", sa.Text, nullable=False),
    sa.Column("head_name", sa.Text, nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("previous_category", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("review_round", sa.Text),
    sa.Column("explanation", JSONB, nullable=False),
    sa.Column("decided_at", _TS, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
)

household_area = sa.Table(
    # Where each household lives (registry and eligibility events): scopes its timeline.
    "household_area", meta,
    sa.Column("household_id", sa.Text, primary_key=True),
    # Indexed: the dashboard reaches a commune's (province's) timeline entries through them.
    sa.Column("province_code", sa.Text, nullable=False, index=True),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("village", sa.Text),
)

commune_area = sa.Table(
    # Province of each commune (for province officers' scope).
    "commune_area", meta,
    sa.Column("commune_code", sa.Text, primary_key=True),
    sa.Column("province_code", sa.Text, nullable=False),
)

# --- public posting -----------------------------------------------------------------------------

posting = sa.Table(
    "posting", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("province_code", sa.Text),
    sa.Column("review_round", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("opens_at", _TS, nullable=False),
    sa.Column("closes_at", _TS, nullable=False),
    sa.Column("closed_at", _TS),
    sa.Column("approved_at", _TS),
    sa.Column("created_by", sa.Text),
    sa.Column("closed_by", sa.Text),
    sa.Column("close_reason", sa.Text),  # why a national admin closed it before its window ended
    sa.Column("approved_by", sa.Text),
    sa.Column("approved", JSONB),
    _created(),
    sa.CheckConstraint("status in ('open', 'closed', 'approved')", name="status"),
)

posting_item = sa.Table(
    # The snapshot shown to the public: no national ID, birth date or phone, ever.
    "posting_item", meta,
    sa.Column("posting_id", sa.Text, sa.ForeignKey("posting.id"), primary_key=True),
    sa.Column("household_id", sa.Text, primary_key=True),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("classification_id", sa.Text, nullable=False),
    sa.Column("village", sa.Text, nullable=False),
    sa.Column("head_name", sa.Text, nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("previous_category", sa.Text),
    sa.Column("indicators", JSONB, nullable=False),
    sa.Column("deprivation_count", sa.Integer, nullable=False),
    sa.Column("threshold", sa.Integer),
)

# --- complaints --------------------------------------------------------------------------------

complaint = sa.Table(
    "complaint", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("province_code", sa.Text),
    sa.Column("posting_id", sa.Text, sa.ForeignKey("posting.id"), index=True),
    sa.Column("household_id", sa.Text, index=True),
    sa.Column("not_on_list", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("assignee", sa.Text),
    sa.Column("received_at", _TS, nullable=False),
    sa.Column("due_at", _TS, nullable=False),
    sa.Column("resolved_at", _TS),
    sa.Column("closed_at", _TS),
    sa.Column("outcome", sa.Text),
    sa.Column("resolution_note", sa.Text),
    sa.Column("action", sa.Text),
    sa.Column("hold_active", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("carried_over", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("created_by", sa.Text),
    sa.CheckConstraint("status in ('received', 'open', 'in_progress', 'resolved', 'rejected', "
                       "'closed')", name="status"),
)

complaint_contact = sa.Table(
    # Kept apart from the complaint so no listing, page or event can carry it by accident.
    "complaint_contact", meta,
    sa.Column("complaint_id", sa.Text, sa.ForeignKey("complaint.id"), primary_key=True),
    sa.Column("contact", sa.Text, nullable=False),
)

complaint_history = sa.Table(
    "complaint_history", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("complaint_id", sa.Text, sa.ForeignKey("complaint.id"), nullable=False, index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("at", _TS, nullable=False, server_default=sa.func.now()),
)

public_filing = sa.Table(
    # Rate limiter of the public form: a keyed hash of the client, never its address.
    "public_filing", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("client_key", sa.Text, nullable=False, index=True),
    sa.Column("at", _TS, nullable=False, server_default=sa.func.now()),
)

# --- community supervision -------------------------------------------------------------------

project = sa.Table(
    "project", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("province_code", sa.Text),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("budget_vnd", sa.BigInteger, nullable=False),
    sa.Column("investor", sa.Text, nullable=False),
    sa.Column("contractor", sa.Text),
    sa.Column("planned_start", sa.Date, nullable=False),
    sa.Column("planned_end", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Column("created_by", sa.Text),
    _created(),
)

board = sa.Table(
    # A Community Investment Supervision Board (per project) or the People's Inspection Board.
    "board", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("province_code", sa.Text),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("project_id", sa.Text, sa.ForeignKey("project.id")),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("members", JSONB, nullable=False),
    sa.Column("created_by", sa.Text),
    _created(),
)

inspection = sa.Table(
    "inspection", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("project_id", sa.Text, sa.ForeignKey("project.id"), nullable=False, index=True),
    sa.Column("board_id", sa.Text, sa.ForeignKey("board.id"), nullable=False),
    sa.Column("inspected_on", sa.Date, nullable=False),
    sa.Column("members_present", JSONB, nullable=False),
    sa.Column("checklist", JSONB, nullable=False),
    sa.Column("notes", sa.Text),
    sa.Column("created_by", sa.Text),
    _created(),
)

finding = sa.Table(
    # A finding of an inspection, or a People's Inspection Board recommendation on the programme;
    # either way the commune answers within 15 days.
    "finding", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("province_code", sa.Text),
    sa.Column("board_id", sa.Text, sa.ForeignKey("board.id"), nullable=False),
    sa.Column("project_id", sa.Text, sa.ForeignKey("project.id")),
    sa.Column("inspection_id", sa.Text, sa.ForeignKey("inspection.id")),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("recommendation", sa.Text, nullable=False),
    sa.Column("raised_at", _TS, nullable=False),
    sa.Column("answer_due_at", _TS, nullable=False),
    sa.Column("answered_at", _TS),
    sa.Column("answer", sa.Text),
    sa.Column("answered_by", sa.Text),
)

# --- timeline ----------------------------------------------------------------------------------

timeline_entry = sa.Table(
    # One event in a household's story; a posting-level event appears once per listed household.
    "timeline_entry", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("time", _TS, nullable=False),
    sa.Column("summary_vi", sa.Text, nullable=False),
    sa.Column("summary_en", sa.Text, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("correlation_id", sa.Text),
    sa.Column("causation_id", sa.Text),
    sa.Column("trace_id", sa.Text),
    sa.Column("data", JSONB, nullable=False),
    sa.UniqueConstraint("event_id", "household_id", name="uq_timeline_entry_event_household"),
)
