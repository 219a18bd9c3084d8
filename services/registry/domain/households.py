"""Household rules: members, heads, dates, names, field-level diffs. Standard library only."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

INDICATOR_CODES = (
    "employment", "dependants", "nutrition", "health_insurance", "adult_education",
    "school_attendance", "housing_quality", "housing_area", "water_source", "latrine", "telecom",
    "information_access", "digital_services", "waste_treatment",
)
OLDEST_BIRTH = date(1900, 1, 1)
HEAD = "head"


@dataclass(frozen=True)
class Violation:
    """One broken rule, naming the input field at fault."""

    field: str
    message: str


class DomainError(ValueError):
    """One or more rules were broken; `violations` name each field."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = list(violations)

    @classmethod
    def one(cls, field: str, message: str) -> DomainError:
        """A single violation."""
        return cls([Violation(field, message)])


def normalise_name(name: str) -> str:
    """Lower case, no diacritics, single spaces: "Nguyễn  Văn A" → "nguyen van a"."""
    text = name.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().split())


def member_violations(members: Sequence[Mapping[str, Any]], *, today: date,
                      prefix: str = "members") -> list[Violation]:
    """Exactly one head; birth dates neither in the future nor before 1900; IDs unique inside."""
    out: list[Violation] = []
    heads = [i for i, m in enumerate(members) if m.get("relation") == HEAD]
    if len(heads) != 1:
        out.append(Violation(prefix, f"exactly one member with relation 'head' required, "
                                     f"got {len(heads)}"))
    seen: dict[str, int] = {}
    for i, m in enumerate(members):
        out.extend(birth_violations(m.get("date_of_birth"), today=today,
                                    field=f"{prefix}.{i}.date_of_birth"))
        nid = m.get("national_id")
        if nid in seen:
            out.append(Violation(f"{prefix}.{i}.national_id",
                                 f"same national ID as {prefix}.{seen[nid]}"))
        elif nid:
            seen[nid] = i
    return out


def birth_violations(dob: date | None, *, today: date, field: str) -> list[Violation]:
    """A birth date may not be in the future nor implausibly old."""
    if dob is None:
        return []
    if dob > today:
        return [Violation(field, f"{dob.isoformat()} is in the future")]
    if dob < OLDEST_BIRTH:
        return [Violation(field, f"{dob.isoformat()} is before {OLDEST_BIRTH.isoformat()}")]
    return []


def survey_violations(*, survey_date: date, income_per_capita_vnd: int,
                      deprivations: Iterable[str], today: date,
                      prefix: str = "") -> list[Violation]:
    """Survey date not in the future, income not negative, only known indicator codes."""
    out: list[Violation] = []
    if survey_date > today:
        out.append(Violation(f"{prefix}survey_date", f"{survey_date.isoformat()} is in the future"))
    if income_per_capita_vnd < 0:
        out.append(Violation(f"{prefix}income_per_capita_vnd", "must not be negative"))
    for code in deprivations:
        if code not in INDICATOR_CODES:
            out.append(Violation(f"{prefix}deprivations.{code}", "unknown indicator code"))
    return out


def head_after(members: Iterable[Mapping[str, Any]]) -> list[Violation]:
    """After a member change the household must still have exactly one head."""
    heads = sum(1 for m in members if m.get("relation") == HEAD)
    if heads != 1:
        return [Violation("relation", f"the household would have {heads} heads; exactly one "
                                      "is required (change the current head first)")]
    return []


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts (and member lists keyed by member_id) as dotted field paths."""
    out: dict[str, Any] = {}
    _flatten_into(out, value, prefix)
    return out


def _flatten_into(out: dict[str, Any], value: Any, prefix: str) -> None:
    if value is None or isinstance(value, str | int | float):  # most leaves: no ABC check
        out[prefix[:-1] if prefix.endswith(".") else prefix] = value
    elif isinstance(value, dict | Mapping):
        for k, v in value.items():
            _flatten_into(out, v, f"{prefix}{k}.")
    elif isinstance(value, list) and value and all(
            isinstance(v, dict | Mapping) and "member_id" in v for v in value):
        for v in value:
            member = f"{prefix}{v['member_id']}."
            for k, x in v.items():
                if k != "member_id":
                    _flatten_into(out, x, f"{member}{k}.")
    else:
        out[prefix[:-1] if prefix.endswith(".") else prefix] = value


IGNORED_IN_DIFF = frozenset({"version", "household_id"})


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field-level before/after between two snapshots (version and id left out)."""
    a = {k: v for k, v in flatten(before or {}).items() if k not in IGNORED_IN_DIFF}
    b = {k: v for k, v in flatten(after).items() if k not in IGNORED_IN_DIFF}
    changes = []
    for key in sorted(a.keys() | b.keys()):
        old, new = a.get(key), b.get(key)
        if old != new and not (old in (None, [], {}) and new in (None, [], {})):
            changes.append({"field": key, "before": old, "after": new})
    return changes


def parse_if_match(header: str | None) -> int | None:
    """The version in an If-Match header (`3`, `"3"`, `W/"3"`), or None when absent/unreadable."""
    if header is None:
        return None
    text = header.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    return int(text) if text.isdigit() else None
