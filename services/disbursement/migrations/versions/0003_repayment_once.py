"""A repayment counts once: unique per instruction and bank reference. Repayments a partner
re-sent under new event ids before this are removed (the first one kept) and the loans they
inflated are corrected.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from datetime import date

import sqlalchemy as sa
from alembic import op

from services.disbursement import domain

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_REMOVE_REPEATS = sa.text("""
with removed as (
    delete from repayment r using repayment k
    where r.instruction_id = k.instruction_id and r.bank_reference = k.bank_reference
      and r.id > k.id
    returning r.instruction_id, r.amount_vnd)
update loan l set repaid_vnd = l.repaid_vnd - s.amount_vnd, updated_at = now()
from (select instruction_id, sum(amount_vnd) as amount_vnd from removed group by instruction_id) s
where l.instruction_id = s.instruction_id
returning l.instruction_id, l.principal_vnd, l.annual_rate_pct, l.term_months, l.disbursed_on,
          l.repaid_vnd
""")


def upgrade() -> None:
    conn = op.get_bind()
    for loan in conn.execute(_REMOVE_REPEATS).all():
        # The stored position follows the corrected total, as the repayment handler computes it.
        position = domain.loan_position(
            instalments=domain.schedule(principal_vnd=loan.principal_vnd,
                                        annual_rate_pct=loan.annual_rate_pct,
                                        term_months=loan.term_months,
                                        disbursed_on=loan.disbursed_on),
            repaid_vnd=loan.repaid_vnd, annual_rate_pct=loan.annual_rate_pct, today=date.today())
        conn.execute(sa.text(
            "update loan set outstanding_principal_vnd = :outstanding, next_due_date = :next_due,"
            " status = :status where instruction_id = :id and status <> 'reversed'"),
            {"outstanding": position.outstanding_principal_vnd,
             "next_due": position.next_due_date, "id": loan.instruction_id,
             "status": "repaid" if position.next_due_date is None else "active"})
    op.create_unique_constraint(op.f("uq_repayment_bank_reference"), "repayment",
                                ["instruction_id", "bank_reference"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_repayment_bank_reference"), "repayment", type_="unique")
