"""Disbursement tables: eligibility projection, groups, budgets, applications, instructions, loans."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from services.disbursement.domain import APPLICATION_OPEN
from shared.db import declarative_base, platform_tables

Base = declarative_base()
platform = platform_tables(Base.metadata)
meta = Base.metadata

_TS = sa.DateTime(timezone=True)
_OPEN = ", ".join(f"'{s}'" for s in APPLICATION_OPEN)


def _now() -> sa.Column:
    return sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now())


household = sa.Table(
    # Projection of eligibility.program_eligibility.changed: the only source of eligibility here.
    "household", meta,
    sa.Column("household_id", sa.Text, primary_key=True),
    sa.Column("commune_code", sa.Text),
    sa.Column("village", sa.Text),
    sa.Column("head_name", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("programs", JSONB, nullable=False),
    sa.Column("as_of", _TS, nullable=False),
    sa.Column("event_id", sa.Text),
    sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
)

commune_area = sa.Table(
    # Province of each commune, learnt from eligibility's classification events (for scope checks).
    "commune_area", meta,
    sa.Column("commune_code", sa.Text, primary_key=True),
    sa.Column("province_code", sa.Text, nullable=False),
)

savings_group = sa.Table(
    "savings_group", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("commune_code", sa.Text, nullable=False, index=True),
    sa.Column("province_code", sa.Text),
    sa.Column("village", sa.Text, nullable=False),
    sa.Column("organisation", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("leader_name", sa.Text),
    sa.Column("member_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_by", sa.Text),
    _now(),
    sa.CheckConstraint("member_count between 0 and 60", name="member_count"),
)

group_member = sa.Table(
    "group_member", meta,
    sa.Column("group_id", sa.Text, sa.ForeignKey("savings_group.id"), primary_key=True),
    # A household belongs to one savings-and-loan group at a time.
    sa.Column("household_id", sa.Text, primary_key=True, unique=True),
    sa.Column("joined_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("added_by", sa.Text),
)

budget = sa.Table(
    "budget", meta,
    sa.Column("programme_code", sa.Text, primary_key=True),
    sa.Column("commune_code", sa.Text, primary_key=True),
    sa.Column("total_vnd", sa.BigInteger, nullable=False),
    sa.Column("committed_vnd", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("source", sa.Text, nullable=False, server_default="default"),
    sa.Column("updated_by", sa.Text),
    sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("committed_vnd >= 0 and committed_vnd <= total_vnd", name="within_total"),
)

application = sa.Table(
    "application", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("programme_code", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("amount_vnd", sa.BigInteger, nullable=False),
    sa.Column("term_months", sa.Integer),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("group_id", sa.Text, sa.ForeignKey("savings_group.id")),
    sa.Column("commune_code", sa.Text, nullable=False),
    sa.Column("province_code", sa.Text),
    sa.Column("village", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text),
    _now(),
    sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Index("ix_application_commune_status", "commune_code", "status"),
    # One open application per household and programme, even under concurrent submissions.
    sa.Index("uq_application_open", "household_id", "programme_code", unique=True,
             postgresql_where=sa.text(f"status in ({_OPEN})")),
)

application_status = sa.Table(
    "application_status", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("application_id", sa.Text, sa.ForeignKey("application.id"), nullable=False,
              index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("actor", sa.Text),
    sa.Column("reason", sa.Text),
)

instruction = sa.Table(
    "instruction", meta,
    sa.Column("id", sa.Text, primary_key=True),
    # The loan's application for a `restructure` instruction (one per restructuring).
    sa.Column("application_id", sa.Text, sa.ForeignKey("application.id"), nullable=False),
    # `disbursement` (money moves) or `restructure` (a loan's new schedule, no money moves).
    sa.Column("kind", sa.Text, nullable=False, server_default="disbursement"),
    sa.Column("restructuring_id", sa.Text, unique=True),
    # The new schedule a `restructure` instruction carries to the partner.
    sa.Column("restructure", JSONB),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("programme_code", sa.Text, nullable=False),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("commune_code", sa.Text, nullable=False),
    sa.Column("province_code", sa.Text),
    sa.Column("beneficiary_reference", sa.Text, nullable=False),
    sa.Column("payee_name", sa.Text, nullable=False),
    sa.Column("transaction_point", sa.Text, nullable=False),
    sa.Column("amount_vnd", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False, server_default="VND"),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("term_months", sa.Integer),
    sa.Column("annual_rate_pct", sa.Float),
    sa.Column("scheduled_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("bank_reference", sa.Text),
    sa.Column("settled_amount_vnd", sa.BigInteger),
    sa.Column("settled_messages", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent_at", _TS),
    # The `sent` status change's event: the partner's answers are its children on the timeline.
    sa.Column("sent_event_id", sa.Text),
    _now(),
    sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Index("ix_instruction_status_date", "status", "scheduled_date"),
    sa.Index("ix_instruction_programme_commune", "programme_code", "commune_code"),
    # The idempotency key: one application never yields two disbursement instructions.
    sa.Index("uq_instruction_disbursement", "application_id", unique=True,
             postgresql_where=sa.text("kind = 'disbursement'")),
)

instruction_status = sa.Table(
    "instruction_status", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("instruction_id", sa.Text, sa.ForeignKey("instruction.id"), nullable=False,
              index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("previous_status", sa.Text),
    sa.Column("at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("bank_reference", sa.Text),
    sa.Column("amount_vnd", sa.BigInteger),
    sa.Column("occurred_at", _TS),
    sa.Column("event_id", sa.Text),
)

bank_message = sa.Table(
    # Every accepted-for-processing partner message, applied or duplicate (refused ones are
    # dead letters): the partner's side of the reconciliation.
    "bank_message", meta,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("instruction_id", sa.Text, sa.ForeignKey("instruction.id"), nullable=False,
              index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("verdict", sa.Text, nullable=False),
    sa.Column("amount_vnd", sa.BigInteger),
    sa.Column("bank_reference", sa.Text),
    sa.Column("occurred_at", _TS, nullable=False),
    sa.Column("received_at", _TS, nullable=False, server_default=sa.func.now()),
)

shock_exposure = sa.Table(
    # Projection of eligibility.review.opened: which households a declared shock affected.
    "shock_exposure", meta,
    sa.Column("household_id", sa.Text, primary_key=True),
    sa.Column("shock_id", sa.Text, primary_key=True),
    sa.Column("shock_type", sa.Text, nullable=False),
    sa.Column("shock_title", sa.Text),
    sa.Column("occurred_on", sa.Date, nullable=False),
    sa.Column("commune_code", sa.Text),
    sa.Column("review_id", sa.Text),
    sa.Column("event_id", sa.Text),
    _now(),
)

_RESTRUCTURING_OPEN = "'requested', 'reviewed', 'confirmed'"

restructuring = sa.Table(
    # A borrower's request to restructure a settled loan after a shock: group review, then the
    # commune chair's confirmation issues one `restructure` instruction to the loan's partner.
    "restructuring", meta,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("loan_instruction_id", sa.Text, sa.ForeignKey("loan.instruction_id"),
              nullable=False, index=True),
    sa.Column("application_id", sa.Text, nullable=False),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("programme_code", sa.Text, nullable=False),
    sa.Column("commune_code", sa.Text, nullable=False),
    sa.Column("province_code", sa.Text),
    sa.Column("group_id", sa.Text),
    sa.Column("shock_id", sa.Text, nullable=False),
    sa.Column("option", sa.Text, nullable=False),
    sa.Column("months", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.Column("reviewed_by", sa.Text),
    sa.Column("review_note", sa.Text),
    sa.Column("confirmed_by", sa.Text),
    sa.Column("new_term_months", sa.Integer),
    sa.Column("new_maturity_date", sa.Date),
    sa.Column("interest_frozen_from", sa.Date),
    sa.Column("interest_frozen_until", sa.Date),
    sa.Column("applied_at", _TS),
    _now(),
    sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("months > 0", name="months_positive"),
    # One restructuring in progress per loan, even under concurrent requests.
    sa.Index("uq_restructuring_open", "loan_instruction_id", unique=True,
             postgresql_where=sa.text(f"status in ({_RESTRUCTURING_OPEN})")),
)

hold = sa.Table(
    "hold", meta,
    sa.Column("complaint_id", sa.Text, primary_key=True),
    sa.Column("household_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text),
    sa.Column("actor", sa.Text),
    sa.Column("requested_at", _TS, nullable=False, server_default=sa.func.now()),
    sa.Column("released_at", _TS),
    sa.Index("ix_hold_active", "household_id", postgresql_where=sa.text("released_at is null")),
)

loan = sa.Table(
    "loan", meta,
    sa.Column("instruction_id", sa.Text, sa.ForeignKey("instruction.id"), primary_key=True),
    sa.Column("application_id", sa.Text, nullable=False),
    sa.Column("household_id", sa.Text, nullable=False, index=True),
    sa.Column("programme_code", sa.Text, nullable=False),
    sa.Column("commune_code", sa.Text, nullable=False),
    sa.Column("province_code", sa.Text),
    sa.Column("principal_vnd", sa.BigInteger, nullable=False),
    sa.Column("annual_rate_pct", sa.Float, nullable=False),
    sa.Column("term_months", sa.Integer, nullable=False),
    sa.Column("disbursed_on", sa.Date, nullable=False),
    sa.Column("maturity_date", sa.Date, nullable=False),
    sa.Column("repaid_vnd", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("outstanding_principal_vnd", sa.BigInteger, nullable=False),
    sa.Column("next_due_date", sa.Date),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    # Restructuring after a shock: interest frozen over [from, until); when it was last applied.
    sa.Column("interest_frozen_from", sa.Date),
    sa.Column("interest_frozen_until", sa.Date),
    sa.Column("restructured_at", _TS),
    sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
)

repayment = sa.Table(
    "repayment", meta,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("instruction_id", sa.Text, sa.ForeignKey("loan.instruction_id"), nullable=False,
              index=True),
    sa.Column("amount_vnd", sa.BigInteger, nullable=False),
    sa.Column("bank_reference", sa.Text),
    sa.Column("occurred_at", _TS, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False, unique=True),
    # A partner re-sending a repayment under a new event id (after a crash) names the same bank
    # reference: it counts once. Repayments without a reference are deduplicated by event id only.
    sa.UniqueConstraint("instruction_id", "bank_reference", name="uq_repayment_bank_reference"),
)
