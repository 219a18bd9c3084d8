"""Loan schedules (monthly interest, principal at term), repayments, overdue (130% of the rate)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

OVERDUE_FACTOR = 1.3


def add_months(day: date, months: int) -> date:
    """Same day `months` later, clipped to the month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Instalment:
    """One due date: the month's interest, and the principal on the last one."""

    number: int
    due_date: date
    interest_vnd: int
    principal_vnd: int

    @property
    def total_vnd(self) -> int:
        """Amount due on that date."""
        return self.interest_vnd + self.principal_vnd


def schedule(*, principal_vnd: int, annual_rate_pct: float, term_months: int,
             disbursed_on: date, frozen_from: date | None = None,
             frozen_until: date | None = None) -> list[Instalment]:
    """Monthly interest on the principal, the principal repaid at term (integer VND); no interest
    on instalments due in [frozen_from, frozen_until) (a restructuring's interest freeze)."""
    monthly = round(principal_vnd * annual_rate_pct / 100 / 12)

    def frozen(due: date) -> bool:
        return frozen_from is not None and frozen_until is not None and \
            frozen_from <= due < frozen_until

    out = []
    for n in range(1, term_months + 1):
        due = add_months(disbursed_on, n)
        out.append(Instalment(number=n, due_date=due, interest_vnd=0 if frozen(due) else monthly,
                              principal_vnd=principal_vnd if n == term_months else 0))
    return out


@dataclass(frozen=True)
class LoanPosition:
    """Where a loan stands on a given day."""

    repaid_vnd: int
    interest_paid_vnd: int
    principal_paid_vnd: int
    outstanding_principal_vnd: int
    instalments_paid: int
    next_due_date: date | None
    overdue: bool
    overdue_amount_vnd: int
    overdue_days: int
    overdue_interest_vnd: int


def loan_position(*, instalments: list[Instalment], repaid_vnd: int, annual_rate_pct: float,
                  today: date) -> LoanPosition:
    """Allocate repayments to instalments in order (interest before principal) and flag overdue."""
    left = repaid_vnd
    interest_paid = principal_paid = paid_count = 0
    next_due: date | None = None
    overdue_amount = 0
    first_overdue: date | None = None
    for inst in instalments:
        pay_interest = min(left, inst.interest_vnd)
        left -= pay_interest
        pay_principal = min(left, inst.principal_vnd)
        left -= pay_principal
        interest_paid += pay_interest
        principal_paid += pay_principal
        unpaid = inst.total_vnd - pay_interest - pay_principal
        if unpaid == 0:
            paid_count += 1
            continue
        if next_due is None:
            next_due = inst.due_date
        if inst.due_date < today:
            overdue_amount += unpaid
            first_overdue = first_overdue or inst.due_date
    principal_paid += left  # prepayment beyond the schedule reduces principal
    total_principal = sum(i.principal_vnd for i in instalments)
    days = (today - first_overdue).days if first_overdue else 0
    overdue_interest = round(overdue_amount * annual_rate_pct * OVERDUE_FACTOR / 100 * days / 365)
    return LoanPosition(
        repaid_vnd=repaid_vnd, interest_paid_vnd=interest_paid,
        principal_paid_vnd=min(principal_paid, total_principal),
        outstanding_principal_vnd=max(total_principal - principal_paid, 0),
        instalments_paid=paid_count, next_due_date=next_due, overdue=overdue_amount > 0,
        overdue_amount_vnd=overdue_amount, overdue_days=days,
        overdue_interest_vnd=overdue_interest,
    )
