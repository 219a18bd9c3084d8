"""Pure registry rules (standard library only): households, surveys, admin units, import lines."""

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

__all__ = [
    "HEAD", "INDICATOR_CODES", "AdminUnit", "DomainError", "Violation", "birth_violations", "diff",
    "flatten", "head_after", "location_violations", "member_violations", "normalise_name",
    "parse_csv", "parse_if_match", "survey_violations",
]
