"""Complaint rules: channels, categories, lifecycle, due dates, what an upheld complaint does."""

from __future__ import annotations

from datetime import datetime, timedelta

CHANNELS = ("web", "officer", "inspection_board")
CATEGORIES = ("wrongly_included", "wrongly_excluded", "wrong_category", "payment_not_received",
              "misconduct", "other")
VERIFICATION_CATEGORIES = ("wrongly_included", "wrongly_excluded", "wrong_category")
HOLD_CATEGORIES = ("payment_not_received", "misconduct")
ACTIVE = ("received", "open", "in_progress")
TERMINAL = ("resolved", "rejected", "closed")

# action → the statuses it may start from → the status it leads to
_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "open": (("received",), "open"),
    "assign": (("received", "open", "in_progress"), "in_progress"),
    "resolve": (("open", "in_progress"), "resolved"),
    "reject": (("received", "open", "in_progress"), "rejected"),
    "close": (("resolved", "rejected"), "closed"),
}


class ComplaintError(Exception):
    """An action not allowed in the complaint's current status."""


def next_status(current: str, action: str) -> str:
    """The status after `action`, or ComplaintError naming what is allowed."""
    allowed, target = _TRANSITIONS[action]
    if current not in allowed:
        raise ComplaintError(f"cannot {action.replace('_', ' ')} a complaint that is {current} "
                             f"(only when {' or '.join(allowed)})")
    return target


def initial_status(channel: str) -> str:
    """Public filings are received (unverified); officers and the inspection board open them."""
    return "received" if channel == "web" else "open"


def due_date(received_at: datetime, *, days: int) -> datetime:
    """When the complaint must be answered (15 days by default, POLICY §6)."""
    return received_at + timedelta(days=days)


def is_overdue(*, status: str, due_at: datetime, now: datetime,
               resolved_at: datetime | None = None) -> bool:
    """Still unanswered past its due date, or answered after it (a breach either way)."""
    if status in ACTIVE:
        return now > due_at
    return resolved_at is not None and resolved_at > due_at


def action_on_upheld(category: str, household_id: str | None) -> str | None:
    """What an upheld complaint triggers: `verification` of the household's data, a payment
    `hold`, or nothing (no household named, or another category)."""
    if household_id is None:
        return None
    if category in VERIFICATION_CATEGORIES:
        return "verification"
    if category in HOLD_CATEGORIES:
        return "hold"
    return None


NOT_ON_LIST = "not_on_list"
LISTED_CATEGORIES = ("wrongly_included", "wrong_category")


def check_public_form(form: dict[str, str], *, references: set[str], text_max: int,
                      contact_max: int = 200) -> tuple[dict[str, str | None], list[tuple[str, str]]]:
    """Validate a public complaint form; return the clean values and (field, error code) pairs."""
    errors: list[tuple[str, str]] = []
    category = (form.get("category") or "").strip()
    household = (form.get("household") or "").strip()
    text = (form.get("text") or "").strip()
    contact = (form.get("contact") or "").strip()
    anonymous = (form.get("anonymous") or "").strip().lower() in ("on", "true", "1", "yes")
    if not category:
        errors.append(("category", "required"))
    elif category not in CATEGORIES:
        errors.append(("category", "unknown_category"))
    if household and household != NOT_ON_LIST and household not in references:
        errors.append(("household", "unknown_household"))
    elif category in LISTED_CATEGORIES and household in ("", NOT_ON_LIST):
        errors.append(("household", "listed_household_required"))
    elif category == "wrongly_excluded" and household in references:
        errors.append(("household", "already_listed"))
    if (form.get("website") or "").strip():  # a hidden field only robots fill in
        errors.append(("website", "must_be_empty"))
    if not text:
        errors.append(("text", "required"))
    elif len(text) > text_max:
        errors.append(("text", "too_long"))
    if contact and not anonymous and len(contact) > contact_max:
        errors.append(("contact", "too_long"))
    return ({"category": category, "household": household or None, "text": text,
             "contact": None if anonymous or not contact else contact}, errors)
