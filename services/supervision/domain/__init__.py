"""Pure supervision rules (standard library only): postings, complaints, community supervision,
timeline summaries."""

from services.supervision.domain.complaints import (
    ACTIVE,
    CATEGORIES,
    CHANNELS,
    HOLD_CATEGORIES,
    NOT_ON_LIST,
    TERMINAL,
    VERIFICATION_CATEGORIES,
    ComplaintError,
    action_on_upheld,
    check_public_form,
    due_date,
    initial_status,
    is_overdue,
    next_status,
)
from services.supervision.domain.postings import (
    VN_TZ,
    PostingError,
    approval_blockers,
    close_after_working_days,
    is_open,
    masked_reference,
)
from services.supervision.domain.projects import answer_due, answer_state
from services.supervision.domain.summaries import summarize

__all__ = [
    "ACTIVE", "CATEGORIES", "CHANNELS", "HOLD_CATEGORIES", "TERMINAL", "VERIFICATION_CATEGORIES",
    "NOT_ON_LIST", "VN_TZ", "ComplaintError", "PostingError", "action_on_upheld", "answer_due", "check_public_form", "initial_status", "answer_state",
    "approval_blockers", "close_after_working_days", "due_date", "is_open", "is_overdue",
    "masked_reference", "next_status", "summarize",
]
