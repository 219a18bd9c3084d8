"""Disbursement API models."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.openapi import IsoDate, IsoDateTime, Open

Organisation = Literal["womens_union", "farmers_association", "veterans_association", "youth_union"]
CommuneCode = Field(pattern=r"^\d{5}$", description="5-digit commune code (post-2025 units)")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GroupCreate(_In):
    """A savings-and-loan group in one village, entrusted to a mass organisation."""

    commune_code: str = CommuneCode
    village: str = Field(min_length=1, max_length=200)
    organisation: Organisation
    name: str = Field(min_length=1, max_length=200)
    leader_name: str | None = Field(default=None, max_length=200)


class MemberAdd(_In):
    """A household joining a group."""

    household_id: str = Field(min_length=1, max_length=64)


class ApplicationCreate(_In):
    """Apply for a loan (through a group) or livelihood support."""

    household_id: str = Field(min_length=1, max_length=64)
    programme_code: str = Field(min_length=1, max_length=64)
    amount_vnd: int = Field(gt=0, le=10_000_000_000)
    term_months: int | None = Field(default=None, gt=0, le=600)
    purpose: str = Field(min_length=3, max_length=1000)
    group_id: str | None = Field(default=None, max_length=64)


class GroupReview(_In):
    """Outcome of the group's open meeting (board, entrusted organisation, village head)."""

    decision: Literal["approve", "reject"]
    note: str = Field(min_length=1, max_length=2000)


class Issue(_In):
    """Confirm (credit, commune chair) or approve (livelihood, commune officer): issue the instruction."""

    scheduled_date: date | None = Field(
        default=None, description="Disbursement day at the commune transaction point (default today)")
    note: str | None = Field(default=None, max_length=2000)


class Reject(_In):
    """Refuse an application, with the reason the household will be told."""

    reason: str = Field(min_length=3, max_length=2000)


class Reschedule(_In):
    """Move the disbursement day of an instruction not yet sent."""

    scheduled_date: date


class Cancel(_In):
    """Cancel an instruction not yet sent."""

    reason: str = Field(min_length=3, max_length=2000)


class BudgetSet(_In):
    """A commune's budget for one programme."""

    total_vnd: int = Field(ge=0, le=10_000_000_000_000)
    province_code: str | None = Field(default=None, pattern=r"^\d{2}$")


class RestructuringCreate(_In):
    """Ask to restructure a settled loan after a shock that hit the borrower's household."""

    option: Literal["extension", "interest_freeze"] = Field(
        description="extension: the term is extended by `months`; interest_freeze: no interest "
                    "on instalments due in the next `months` (maxima in restructuring.yaml)")
    months: int = Field(gt=0, le=600)
    shock_id: str = Field(min_length=1, max_length=64,
                          description="The declared shock (registry) the household was exposed to")
    reason: str = Field(min_length=3, max_length=2000,
                        description="The losses the household suffered")


class RestructuringConfirm(_In):
    """The commune chair's confirmation of a reviewed restructuring."""

    note: str | None = Field(default=None, max_length=2000)


# --- responses (they pass through members added later: `Open`) ------------------------------

class ProgrammeRead(Open):
    """A programme as configured."""

    code: str
    kind: str
    support_type: str
    name: str
    requires_eligibility: str
    partner: str
    ceiling_vnd: int
    annual_rate_pct: float | None = None
    max_term_months: int | None = None
    min_term_months: int | None = None
    in_kind_item: str | None = None
    default_commune_budget_vnd: int
    unconfirmed: list[str]
    notes: str
    overdue_rate_pct: float | None = None


class HoldRead(Open):
    """A complaint's hold on a household's disbursements."""

    complaint_id: str
    reason: str | None = None
    requested_at: IsoDateTime
    released_at: IsoDateTime | None = None


class ShockExposureRead(Open):
    """A declared shock that hit the household's area."""

    shock_id: str
    shock_type: str
    shock_title: str
    occurred_on: IsoDate


class HouseholdRead(Open):
    """What disbursement knows of a household (from eligibility's events)."""

    household_id: str
    commune_code: str | None = None
    village: str | None = None
    head_name: str | None = None
    category: str | None = None
    status: str | None = None
    programs: Any = Field(description="each programme's eligibility, as eligibility published it")
    as_of: IsoDateTime
    event_id: str | None = None
    updated_at: IsoDateTime
    holds: list[HoldRead]
    on_hold: bool
    group_id: str | None = None
    shocks: list[ShockExposureRead] = Field(default_factory=list)


class BudgetRead(Open):
    """A commune's budget for a programme, and what is left of it."""

    programme_code: str
    commune_code: str
    total_vnd: int
    committed_vnd: int
    remaining_vnd: int
    source: str
    updated_by: str | None = None
    updated_at: IsoDateTime


class GroupMemberRead(Open):
    """A member household of a group."""

    household_id: str
    joined_at: IsoDateTime
    head_name: str | None = None


class GroupSummary(Open):
    """A savings-and-loan group in a listing."""

    group_id: str
    commune_code: str
    province_code: str | None = None
    village: str
    organisation: str
    name: str
    leader_name: str | None = None
    member_count: int
    created_by: str | None = None
    created_at: IsoDateTime
    takes_applications: bool


class GroupRead(GroupSummary):
    """A group with its members."""

    members: list[GroupMemberRead]


class StatusChange(Open):
    """One status of an application, with time and reason."""

    status: str
    at: IsoDateTime
    actor: str | None = None
    reason: str | None = None


class InstructionStatusChange(StatusChange):
    """One status of an instruction: who or which partner message set it."""

    previous_status: str | None = None
    source: str
    bank_reference: str | None = None
    amount_vnd: int | None = None
    occurred_at: IsoDateTime | None = None


class InstructionRead(Open):
    """A payment instruction and its status history."""

    instruction_id: str
    application_id: str
    kind: str = Field(default="disbursement", examples=["disbursement", "restructure"],
                      description="restructure: a loan's new schedule, no money moves")
    restructuring_id: str | None = None
    restructure: dict[str, Any] | None = Field(
        default=None, description="the new schedule a restructure instruction carries")
    household_id: str
    programme_code: str
    partner: str
    commune_code: str
    province_code: str | None = None
    beneficiary_reference: str
    payee_name: str
    transaction_point: str
    amount_vnd: int
    currency: str
    purpose: str
    term_months: int | None = None
    annual_rate_pct: float | None = None
    scheduled_date: IsoDate
    status: str
    bank_reference: str | None = None
    settled_amount_vnd: int | None = None
    settled_messages: int
    sent_at: IsoDateTime | None = None
    sent_event_id: str | None = None
    created_at: IsoDateTime
    updated_at: IsoDateTime
    history: list[InstructionStatusChange]


class _Application(Open):
    """What every answer about an application says of it."""

    application_id: str
    household_id: str
    programme_code: str
    kind: str
    amount_vnd: int
    term_months: int | None = None
    purpose: str
    group_id: str | None = None
    commune_code: str
    province_code: str | None = None
    village: str | None = None
    status: str
    created_by: str | None = None
    created_at: IsoDateTime
    updated_at: IsoDateTime


class ApplicationSummary(_Application):
    """An application in a listing, with its instruction's status."""

    instruction_id: str | None = None
    instruction_status: str | None = None


class ApplicationRead(_Application):
    """An application, its instruction, and every status of both."""

    history: list[StatusChange]
    instruction: InstructionRead | None = None


class InstalmentRead(Open):
    """One instalment of a loan's schedule."""

    number: int
    due_date: IsoDate
    interest_vnd: int
    principal_vnd: int
    total_vnd: int


class RepaymentRead(Open):
    """A repayment the partner reported."""

    amount_vnd: int
    bank_reference: str | None = None
    occurred_at: IsoDateTime


class LoanSummary(Open):
    """A settled loan with its balance and where it stands today."""

    instruction_id: str
    application_id: str
    household_id: str
    programme_code: str
    commune_code: str
    province_code: str | None = None
    principal_vnd: int
    annual_rate_pct: float
    term_months: int
    disbursed_on: IsoDate
    maturity_date: IsoDate
    repaid_vnd: int
    outstanding_principal_vnd: int
    next_due_date: IsoDate | None = None
    status: str
    interest_frozen_from: IsoDate | None = None
    interest_frozen_until: IsoDate | None = None
    restructured_at: IsoDateTime | None = None
    updated_at: IsoDateTime
    overdue: bool
    overdue_amount_vnd: int
    overdue_days: int
    overdue_rate_pct: float
    overdue_interest_vnd: int
    monthly_interest_vnd: int
    interest_paid_vnd: int
    principal_paid_vnd: int
    instalments_paid: int


class LoanRead(LoanSummary):
    """A loan with its schedule and repayments."""

    schedule: list[InstalmentRead]
    repayments: list[RepaymentRead]


class StatusTotal(Open):
    """Instructions of one status: how many, for how much, how much settled."""

    status: str
    count: int
    amount_vnd: int
    settled_amount_vnd: int


class Totals(Open):
    """All instructions of the report."""

    count: int
    amount_vnd: int
    settled_amount_vnd: int


class Mismatch(Open):
    """A difference between our instructions and a partner's reports."""

    kind: str = Field(examples=["amount_differs", "settled_twice", "unknown_instruction",
                                "refused_status"])
    instruction_id: str | None = None
    partner: str
    amount_vnd: int | None = None
    partner_amount_vnd: int | None = None
    detail: str | None = None


class RestructuredLoan(Open):
    """A restructuring the partner applied: which loan, how, and the new schedule."""

    loan_instruction_id: str
    restructuring_id: str
    household_id: str
    programme_code: str
    commune_code: str
    shock_id: str
    option: str
    months: int
    new_term_months: int | None = None
    new_maturity_date: IsoDate | None = None
    interest_frozen_from: IsoDate | None = None
    interest_frozen_until: IsoDate | None = None
    applied_at: IsoDateTime | None = None
    instruction_id: str
    partner: str | None = None
    bank_reference: str | None = None


class Restructured(Open):
    """The restructurings applied (they move no money, so are not in the totals)."""

    count: int
    loans: list[RestructuredLoan]


class ReconciliationRead(Open):
    """Counts and amounts per status, and the mismatches with partners."""

    programme_code: str | None = None
    commune_code: str | None = None
    generated_at: IsoDate
    by_status: list[StatusTotal]
    totals: Totals
    mismatches: list[Mismatch]
    restructured: Restructured | None = None


class RestructuringOptionRead(Open):
    """A restructuring option as configured."""

    code: str
    name: str
    max_months: int
    unconfirmed: list[str]
    notes: str


class RestructuringRead(Open):
    """A restructuring request, its new schedule and its restructure instruction."""

    restructuring_id: str
    loan_instruction_id: str
    application_id: str
    household_id: str
    programme_code: str
    commune_code: str
    province_code: str | None = None
    group_id: str | None = None
    shock_id: str
    option: str
    months: int
    reason: str
    status: str
    created_by: str | None = None
    reviewed_by: str | None = None
    review_note: str | None = None
    confirmed_by: str | None = None
    new_term_months: int | None = None
    new_maturity_date: IsoDate | None = None
    interest_frozen_from: IsoDate | None = None
    interest_frozen_until: IsoDate | None = None
    applied_at: IsoDateTime | None = None
    created_at: IsoDateTime
    updated_at: IsoDateTime
    instruction: InstructionRead | None = None
