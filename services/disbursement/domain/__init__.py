"""Pure disbursement rules (programmes, groups, instruction lifecycle, loans). Standard library only."""

from services.disbursement.domain.lifecycle import (
    APPLICATION_OPEN,
    BANK_STATUSES,
    BANK_TRANSITIONS,
    INSTRUCTION_STATUSES,
    RELEASES_BUDGET,
    SENDABLE,
    BankVerdict,
    judge_bank_status,
    may_cancel,
)
from services.disbursement.domain.loans import Instalment, LoanPosition, loan_position, schedule
from services.disbursement.domain.programmes import (
    GROUP_MAX_MEMBERS,
    GROUP_MIN_MEMBERS,
    ORGANISATIONS,
    Programme,
    application_violations,
    beneficiary_reference,
    parse_programmes,
)
from services.disbursement.domain.restructuring import (
    NewSchedule,
    RestructuringOption,
    new_schedule,
    parse_options,
    request_violations,
)

__all__ = [
    "APPLICATION_OPEN", "BANK_STATUSES", "BANK_TRANSITIONS", "GROUP_MAX_MEMBERS", "GROUP_MIN_MEMBERS",
    "INSTRUCTION_STATUSES", "ORGANISATIONS", "RELEASES_BUDGET", "SENDABLE", "BankVerdict",
    "Instalment", "LoanPosition", "Programme", "application_violations", "beneficiary_reference",
    "judge_bank_status", "loan_position", "may_cancel", "parse_programmes", "schedule",
    "NewSchedule", "RestructuringOption", "new_schedule", "parse_options", "request_violations",
]
