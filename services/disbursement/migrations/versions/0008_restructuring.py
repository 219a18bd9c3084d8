"""Loan restructuring after a shock: the shock-exposure projection, restructurings, and
`restructure` instructions (one per restructuring; a loan's application may now have one
disbursement instruction and any number of restructure instructions).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shock_exposure",
        sa.Column("household_id", sa.Text(), nullable=False),
        sa.Column("shock_id", sa.Text(), nullable=False),
        sa.Column("shock_type", sa.Text(), nullable=False),
        sa.Column("shock_title", sa.Text()),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("commune_code", sa.Text()),
        sa.Column("review_id", sa.Text()),
        sa.Column("event_id", sa.Text()),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("household_id", "shock_id", name=op.f("pk_shock_exposure")),
    )
    op.create_table(
        "restructuring",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("loan_instruction_id", sa.Text(), nullable=False),
        sa.Column("application_id", sa.Text(), nullable=False),
        sa.Column("household_id", sa.Text(), nullable=False),
        sa.Column("programme_code", sa.Text(), nullable=False),
        sa.Column("commune_code", sa.Text(), nullable=False),
        sa.Column("province_code", sa.Text()),
        sa.Column("group_id", sa.Text()),
        sa.Column("shock_id", sa.Text(), nullable=False),
        sa.Column("option", sa.Text(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text()),
        sa.Column("reviewed_by", sa.Text()),
        sa.Column("review_note", sa.Text()),
        sa.Column("confirmed_by", sa.Text()),
        sa.Column("new_term_months", sa.Integer()),
        sa.Column("new_maturity_date", sa.Date()),
        sa.Column("interest_frozen_from", sa.Date()),
        sa.Column("interest_frozen_until", sa.Date()),
        sa.Column("applied_at", _TS),
        sa.Column("created_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", _TS, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("months > 0", name=op.f("ck_restructuring_months_positive")),
        sa.ForeignKeyConstraint(["loan_instruction_id"], ["loan.instruction_id"],
                                name=op.f("fk_restructuring_loan_instruction_id_loan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restructuring")),
    )
    op.create_index(op.f("ix_restructuring_loan_instruction_id"), "restructuring",
                    ["loan_instruction_id"])
    op.create_index(op.f("ix_restructuring_household_id"), "restructuring", ["household_id"])
    op.create_index("uq_restructuring_open", "restructuring", ["loan_instruction_id"],
                    unique=True,
                    postgresql_where=sa.text("status in ('requested', 'reviewed', 'confirmed')"))
    op.add_column("instruction", sa.Column("kind", sa.Text(), server_default="disbursement",
                                           nullable=False))
    op.add_column("instruction", sa.Column("restructuring_id", sa.Text()))
    op.add_column("instruction", sa.Column("restructure", JSONB()))
    op.create_unique_constraint(op.f("uq_instruction_restructuring_id"), "instruction",
                                ["restructuring_id"])
    op.drop_constraint("uq_instruction_application_id", "instruction", type_="unique")
    op.create_index("uq_instruction_disbursement", "instruction", ["application_id"],
                    unique=True, postgresql_where=sa.text("kind = 'disbursement'"))
    op.add_column("loan", sa.Column("interest_frozen_from", sa.Date()))
    op.add_column("loan", sa.Column("interest_frozen_until", sa.Date()))
    op.add_column("loan", sa.Column("restructured_at", _TS))


def downgrade() -> None:
    op.drop_column("loan", "restructured_at")
    op.drop_column("loan", "interest_frozen_until")
    op.drop_column("loan", "interest_frozen_from")
    op.execute("delete from instruction_status where instruction_id in "
               "(select id from instruction where kind <> 'disbursement')")
    op.execute("delete from bank_message where instruction_id in "
               "(select id from instruction where kind <> 'disbursement')")
    op.execute("delete from instruction where kind <> 'disbursement'")
    op.drop_index("uq_instruction_disbursement", table_name="instruction")
    op.create_unique_constraint("uq_instruction_application_id", "instruction",
                                ["application_id"])
    op.drop_constraint(op.f("uq_instruction_restructuring_id"), "instruction", type_="unique")
    op.drop_column("instruction", "restructure")
    op.drop_column("instruction", "restructuring_id")
    op.drop_column("instruction", "kind")
    op.drop_table("restructuring")
    op.drop_table("shock_exposure")
