"""Integration events disbursement publishes (its public contract, bank partners included).

Bank-facing messages never carry a national ID: only a beneficiary reference and the payee name.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

TOPIC = "disbursement.events"
SOURCE = "/services/disbursement"

APPLICATION_SUBMITTED = "disbursement.application.submitted.v1"
APPLICATION_REVIEWED = "disbursement.application.reviewed.v1"
APPLICATION_CONFIRMED = "disbursement.application.confirmed.v1"
APPLICATION_REJECTED = "disbursement.application.rejected.v1"
INSTRUCTION_ISSUED = "disbursement.instruction.issued.v1"
INSTRUCTION_STATUS_CHANGED = "disbursement.instruction.status_changed.v1"
HOLD_APPLIED = "disbursement.hold.applied.v1"
HOLD_RELEASED = "disbursement.hold.released.v1"
REPAYMENT_RECORDED = "disbursement.loan.repayment_recorded.v1"
BANK_MESSAGE_RECEIVED = "disbursement.bank_message.received.v1"
RESTRUCTURING_REQUESTED = "disbursement.restructuring.requested.v1"
RESTRUCTURING_REVIEWED = "disbursement.restructuring.reviewed.v1"
RESTRUCTURING_CONFIRMED = "disbursement.restructuring.confirmed.v1"
RESTRUCTURING_APPLIED = "disbursement.restructuring.applied.v1"
BANK_STATUS = "bank.instruction.status.v1"

InstructionStatus = Literal["approved", "sent", "accepted", "rejected", "settled", "failed",
                            "reversed", "on_hold", "cancelled"]


def instructions_topic(partner: str) -> str:
    """Topic a bank partner consumes its instructions from."""
    return f"disbursement.instructions.{partner}"


def status_topic(partner: str) -> str:
    """Topic a bank partner publishes instruction statuses on."""
    return f"disbursement.status.{partner}"


# A partner signs every status (docs/bank-partner.md, "Signed statuses"): a compact JWS, EdDSA
# (Ed25519), key id in its protected `kid` header, carried in this Kafka header; its payload is
# `status_signature_claims` of the record as sent.
SIGNATURE_HEADER = "ev_signature"
SIGNATURE_ALGORITHM = "EdDSA"


def status_signature_claims(*, ce_id: str, ce_type: str, ce_source: str,
                            value: bytes) -> dict[str, str]:
    """What a status signature's payload says: the CloudEvents identity of the record and the
    SHA-256 (hex) of its exact value bytes."""
    return {"ce_id": ce_id, "ce_type": ce_type, "ce_source": ce_source,
            "value_sha256": hashlib.sha256(value).hexdigest()}


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")


class ApplicationEventV1(_Event):
    """Application submitted / reviewed / confirmed / rejected."""

    application_id: str
    household_id: str
    programme_code: str
    amount_vnd: int
    term_months: int | None = None
    status: str
    group_id: str | None = None
    note: str | None = None
    reason: str | None = None
    actor: str | None = None


class RestructureScheduleV1(_Event):
    """The new schedule of a loan a `restructure` instruction asks the partner to apply."""

    loan_instruction_id: str  # the instruction that disbursed the loan
    loan_bank_reference: str | None = None  # the partner's reference of that loan
    option: Literal["extension", "interest_freeze"]
    months: int
    new_term_months: int
    new_maturity_date: date
    interest_frozen_from: date | None = None
    interest_frozen_until: date | None = None


class InstructionIssuedV1(_Event):
    """`disbursement.instruction.issued.v1`: pay or deliver (bank-facing; no national ID); or,
    with `kind: restructure`, apply a loan's new schedule (no money moves, amount 0)."""

    instruction_id: str
    application_id: str
    programme_code: str
    beneficiary_reference: str
    payee_name: str
    commune_code: str
    transaction_point: str
    amount_vnd: int
    currency: Literal["VND"] = "VND"
    purpose: str
    term_months: int | None = None
    annual_rate_pct: float | None = None
    scheduled_date: date
    partner: str | None = None
    kind: Literal["disbursement", "restructure"] = "disbursement"
    restructure: RestructureScheduleV1 | None = None


class BankInstructionStatusV1(_Event):
    """`bank.instruction.status.v1`: the partner's answer on `disbursement.status.<partner>`."""

    instruction_id: str
    status: Literal["accepted", "rejected", "settled", "failed", "reversed", "repayment_received"]
    reason_code: str | None = None
    bank_reference: str | None = None
    amount_vnd: int | None = None
    occurred_at: datetime


class InstructionStatusChangedV1(_Event):
    """`disbursement.instruction.status_changed.v1` on `disbursement.events`."""

    instruction_id: str
    application_id: str
    household_id: str
    status: InstructionStatus
    previous_status: InstructionStatus | None = None
    reason: str | None = None
    bank_reference: str | None = None
    amount_vnd: int | None = None
    occurred_at: datetime
    kind: Literal["disbursement", "restructure"] | None = None  # `restructure`: settled = applied


class HoldEventV1(_Event):
    """`disbursement.hold.applied.v1` / `disbursement.hold.released.v1`."""

    household_id: str
    complaint_id: str
    instruction_ids: list[str] = []
    already_sent_instruction_ids: list[str] = []
    reason: str | None = None


class RepaymentRecordedV1(_Event):
    """`disbursement.loan.repayment_recorded.v1`: a partner reported a loan repayment."""

    instruction_id: str
    household_id: str
    amount_vnd: int
    repaid_vnd: int
    outstanding_principal_vnd: int
    bank_reference: str | None = None
    occurred_at: datetime


class BankMessageReceivedV1(_Event):
    """`disbursement.bank_message.received.v1`: a partner's status (authenticated and applied)
    on the household's record, so the timeline shows which bank message made the instruction
    accepted, settled or repaid. Caused by the instruction's `sent` status change; the status
    change or repayment it brings about is caused by this event."""

    instruction_id: str
    application_id: str
    household_id: str
    partner: str
    status: str
    message_id: str  # the partner's CloudEvents id
    bank_reference: str | None = None
    amount_vnd: int | None = None
    reason_code: str | None = None
    occurred_at: datetime
    actor: str  # `partner:<id>`
    kind: Literal["disbursement", "restructure"] | None = None  # the instruction's


class RestructuringEventV1(_Event):
    """Restructuring requested / reviewed / confirmed / applied (a loan's schedule after a shock)."""

    restructuring_id: str
    loan_instruction_id: str
    household_id: str
    programme_code: str
    shock_id: str
    option: Literal["extension", "interest_freeze"]
    months: int
    status: str
    reason: str | None = None
    decision: Literal["approve", "reject"] | None = None  # the group review's
    note: str | None = None
    instruction_id: str | None = None  # the `restructure` instruction (from confirmed on)
    new_term_months: int | None = None
    new_maturity_date: date | None = None
    interest_frozen_from: date | None = None
    interest_frozen_until: date | None = None
    actor: str | None = None


EVENTS: dict[str, type[BaseModel]] = {
    APPLICATION_SUBMITTED: ApplicationEventV1,
    APPLICATION_REVIEWED: ApplicationEventV1,
    APPLICATION_CONFIRMED: ApplicationEventV1,
    APPLICATION_REJECTED: ApplicationEventV1,
    INSTRUCTION_ISSUED: InstructionIssuedV1,
    INSTRUCTION_STATUS_CHANGED: InstructionStatusChangedV1,
    HOLD_APPLIED: HoldEventV1,
    HOLD_RELEASED: HoldEventV1,
    REPAYMENT_RECORDED: RepaymentRecordedV1,
    BANK_MESSAGE_RECEIVED: BankMessageReceivedV1,
    RESTRUCTURING_REQUESTED: RestructuringEventV1,
    RESTRUCTURING_REVIEWED: RestructuringEventV1,
    RESTRUCTURING_CONFIRMED: RestructuringEventV1,
    RESTRUCTURING_APPLIED: RestructuringEventV1,
    BANK_STATUS: BankInstructionStatusV1,
}
