"""Loan restructuring after a shock: the options as data, the checks of a request, and the new
schedule each option gives. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.disbursement.domain.loans import add_months
from services.disbursement.domain.programmes import Violation

OPTIONS = ("extension", "interest_freeze")
# A restructuring is open until its instruction is answered (or the group rejects it).
OPEN = ("requested", "reviewed", "confirmed")


@dataclass(frozen=True)
class RestructuringOption:
    """One restructuring option: what it does, and for how many months at most."""

    code: str
    name: str
    max_months: int
    unconfirmed: tuple[str, ...] = ()
    notes: str = ""


def parse_options(raw: dict[str, Any]) -> dict[str, RestructuringOption]:
    """Validate the restructuring document (already parsed from YAML)."""
    out: dict[str, RestructuringOption] = {}
    for item in raw.get("options", []):
        code = str(item.get("code"))
        if code not in OPTIONS:
            raise ValueError(f"restructuring option {code!r}: must be one of {OPTIONS}")
        if code in out:
            raise ValueError(f"restructuring option {code} defined twice")
        limit = item.get("max_months")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"restructuring option {code}: max_months must be a positive integer")
        out[code] = RestructuringOption(code=code, name=str(item.get("name", code)), max_months=limit,
                           unconfirmed=tuple(item.get("unconfirmed", ())),
                           notes=str(item.get("notes", "")).strip())
    missing = [c for c in OPTIONS if c not in out]
    if missing:
        raise ValueError(f"restructuring options missing: {', '.join(missing)}")
    return out


def request_violations(*, option: RestructuringOption, months: int, loan_status: str,
                       outstanding_principal_vnd: int, exposed: bool,
                       shock_id: str) -> list[Violation]:
    """Every reason a restructuring request cannot be accepted (empty: acceptable)."""
    out: list[Violation] = []
    if loan_status != "active" or outstanding_principal_vnd <= 0:
        out.append(Violation("instruction_id", "loan_not_outstanding",
                             f"the loan is {loan_status} with {outstanding_principal_vnd:,} VND "
                             "outstanding: only a settled, outstanding loan can be restructured"))
    if not exposed:
        out.append(Violation("shock_id", "not_exposed",
                             f"the borrower's household was not affected by shock {shock_id} "
                             "(no ad-hoc review was opened for it): the loan is outside the "
                             "shock's area"))
    if months < 1:
        out.append(Violation("months", "months_not_positive", "must be at least 1"))
    elif months > option.max_months:
        out.append(Violation("months", "above_max_months",
                             f"{months} months is above the maximum of {option.max_months} "
                             f"months for {option.code}"))
    return out


@dataclass(frozen=True)
class NewSchedule:
    """What a restructuring changes: term and maturity (extension), or a freeze period."""

    term_months: int
    maturity_date: date
    interest_frozen_from: date | None = None
    interest_frozen_until: date | None = None


def new_schedule(*, option: str, months: int, term_months: int, disbursed_on: date,
                 maturity_date: date, today: date) -> NewSchedule:
    """The schedule after the restructuring: an extension moves the maturity `months` later; a
    freeze makes the interest of instalments due in [today, today + months) zero."""
    if option == "extension":
        return NewSchedule(term_months=term_months + months,
                           maturity_date=add_months(disbursed_on, term_months + months))
    return NewSchedule(term_months=term_months, maturity_date=maturity_date,
                       interest_frozen_from=today,
                       interest_frozen_until=add_months(today, months))
