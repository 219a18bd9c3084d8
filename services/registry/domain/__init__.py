"""Pure registry rules (standard library only): households, surveys, admin units, import lines,
cadres, assignments and visits."""

from services.registry.domain.admin_units import AdminUnit, location_violations, parse_csv
from services.registry.domain.households import (
    HEAD,
    INDICATOR_CODES,
    DomainError,
    Violation,
    birth_violations,
    diff,
    flatten,
    head_after,
    member_violations,
    normalise_name,
    parse_if_match,
    survey_violations,
)
from services.registry.domain.visits import (
    ORGANISATIONS,
    OUTCOMES,
    Period,
    overlapping_villages,
    period_violations,
    villages_violations,
    visit_violations,
)

__all__ = [
    "HEAD", "INDICATOR_CODES", "ORGANISATIONS", "OUTCOMES", "AdminUnit", "DomainError", "Period",
    "Violation", "birth_violations", "diff", "flatten", "head_after", "location_violations",
    "member_violations", "normalise_name", "overlapping_villages", "parse_csv", "parse_if_match",
    "period_violations", "survey_violations", "villages_violations", "visit_violations",
]
