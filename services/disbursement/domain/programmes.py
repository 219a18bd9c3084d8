"""Programmes as data, savings-and-loan group rules, application checks, beneficiary references."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

ORGANISATIONS = ("womens_union", "farmers_association", "veterans_association", "youth_union")
GROUP_MIN_MEMBERS = 3
GROUP_MAX_MEMBERS = 60
KINDS = ("credit", "livelihood")
SUPPORT_TYPES = ("loan", "cash_grant", "in_kind", "voucher")


@dataclass(frozen=True)
class Programme:
    """One disbursement programme: what it gives, to whom (eligibility code), through which partner."""

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
    default_commune_budget_vnd: int = 0
    unconfirmed: tuple[str, ...] = ()
    notes: str = ""

    @property
    def is_credit(self) -> bool:
        """A loan through a savings-and-loan group (group review, then the commune chair)."""
        return self.kind == "credit"

    @property
    def overdue_rate_pct(self) -> float | None:
        """Overdue interest: 130% of the lending rate (POLICY §4)."""
        return None if self.annual_rate_pct is None else round(self.annual_rate_pct * 1.3, 4)


def _int(raw: dict[str, Any], key: str, *, default: int | None = None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"programme {raw.get('code')}: {key} must be a non-negative integer")
    return value


def parse_programmes(raw: dict[str, Any]) -> dict[str, Programme]:
    """Validate the programme document (already parsed from YAML) into Programme objects."""
    default_partner = str(raw.get("default_partner", "vbsp"))
    out: dict[str, Programme] = {}
    for item in raw.get("programmes", []):
        code = str(item["code"])
        kind = item.get("kind")
        if kind not in KINDS:
            raise ValueError(f"programme {code}: kind must be one of {KINDS}")
        support = item.get("support_type", "loan" if kind == "credit" else "cash_grant")
        if support not in SUPPORT_TYPES:
            raise ValueError(f"programme {code}: support_type must be one of {SUPPORT_TYPES}")
        rate = item.get("annual_rate_pct")
        if kind == "credit" and (rate is None or item.get("max_term_months") is None):
            raise ValueError(f"programme {code}: a credit programme needs a rate and a max term")
        if code in out:
            raise ValueError(f"programme {code} defined twice")
        out[code] = Programme(
            code=code, kind=kind, support_type=support, name=str(item.get("name", code)),
            requires_eligibility=str(item["requires_eligibility"]),
            partner=str(item.get("partner", default_partner)),
            ceiling_vnd=_int(item, "ceiling_vnd") or 0,
            annual_rate_pct=float(rate) if rate is not None else None,
            max_term_months=_int(item, "max_term_months"),
            min_term_months=_int(item, "min_term_months"),
            in_kind_item=item.get("in_kind_item"),
            default_commune_budget_vnd=_int(item, "default_commune_budget_vnd", default=0) or 0,
            unconfirmed=tuple(item.get("unconfirmed", ())),
            notes=str(item.get("notes", "")),
        )
    return out


@dataclass(frozen=True)
class Violation:
    """A reason an application cannot be accepted, naming the field."""

    field: str
    code: str
    message: str


@dataclass
class ApplicantFacts:
    """What the projection and the group say about the applicant."""

    known: bool
    eligible: bool = False
    eligibility_reason: str = ""
    village: str | None = None
    commune_code: str | None = None
    group_found: bool = False
    group_member: bool = False
    group_members: int = 0
    group_village: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def application_violations(*, programme: Programme, amount_vnd: int, term_months: int | None,
                           group_id: str | None, facts: ApplicantFacts) -> list[Violation]:
    """Every rule an application breaks (empty: acceptable), in the order an officer reads them."""
    out: list[Violation] = []
    if not facts.known:
        out.append(Violation("household_id", "unknown_household",
                             "no eligibility decision has been received for this household yet"))
        return out
    if not facts.eligible:
        out.append(Violation("household_id", "not_eligible",
                             f"not eligible for {programme.requires_eligibility} now: "
                             f"{facts.eligibility_reason or 'no reason given'}"))
    if amount_vnd <= 0:
        out.append(Violation("amount_vnd", "amount_not_positive", "must be more than 0"))
    elif amount_vnd > programme.ceiling_vnd:
        out.append(Violation("amount_vnd", "above_ceiling",
                             f"{amount_vnd:,} VND is above the ceiling of {programme.ceiling_vnd:,} "
                             f"VND for {programme.code}"))
    if programme.is_credit:
        if term_months is None:
            out.append(Violation("term_months", "term_required", "a loan needs a term in months"))
        elif term_months < (programme.min_term_months or 1):
            out.append(Violation("term_months", "term_too_short",
                                 f"at least {programme.min_term_months or 1} months"))
        elif programme.max_term_months is not None and term_months > programme.max_term_months:
            out.append(Violation("term_months", "above_max_term",
                                 f"{term_months} months is above the maximum term of "
                                 f"{programme.max_term_months} months for {programme.code}"))
        if group_id is None:
            out.append(Violation("group_id", "group_required",
                                 "a loan is applied for through a savings-and-loan group"))
        elif not facts.group_found:
            out.append(Violation("group_id", "unknown_group", "no such savings-and-loan group"))
        elif not facts.group_member:
            out.append(Violation("group_id", "not_group_member",
                                 "the household is not a member of this savings-and-loan group"))
        elif facts.group_members < GROUP_MIN_MEMBERS:
            out.append(Violation("group_id", "group_too_small",
                                 f"the group has {facts.group_members} members; it takes "
                                 f"applications from {GROUP_MIN_MEMBERS} members"))
    elif term_months is not None:
        out.append(Violation("term_months", "term_not_applicable",
                             "only loans have a term"))
    return out


def beneficiary_reference(*, key: str, household_id: str) -> str:
    """Opaque, stable reference a bank sees instead of any national ID (keyed hash of the id)."""
    digest = hmac.new(key.encode(), household_id.encode(), hashlib.sha256).hexdigest()
    return "BR-" + digest[:20].upper()
