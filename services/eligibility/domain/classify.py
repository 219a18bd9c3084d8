"""Classification of one household under one rule set, with the explanation officials check."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from services.eligibility.domain.rulesets import RuleSet

CATEGORIES = ("poor", "near_poor", "middle", "not_poor", "incomplete")
CATEGORY_WORDS = {"poor": "poor", "near_poor": "near-poor", "middle": "middle living standard",
                  "not_poor": "not poor", "incomplete": "incomplete"}


@dataclass(frozen=True)
class Explanation:
    """Why a household got its category: the numbers compared and the indicators counted."""

    ruleset_id: str
    area_type: str
    income_per_capita_vnd: int
    income_line_vnd: int
    middle_line_vnd: int | None
    deprived: list[dict[str, str]]
    deprivation_count: int
    threshold: int
    missing: list[str]
    ignored: list[str] = field(default_factory=list)
    legal_basis: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def deprived_codes(self) -> list[str]:
        """Codes of the indicators the household is deprived in."""
        return [d["code"] for d in self.deprived]

    def as_dict(self) -> dict[str, Any]:
        """Plain data (stored as JSON, published in events); lists copied one level deep, which
        is all they have (dataclasses.asdict's generic deep copy is the slow part of a batch)."""
        return {f.name: _copy(getattr(self, f.name)) for f in fields(self)}


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [dict(v) if isinstance(v, dict) else v for v in value]
    return value


@dataclass(frozen=True)
class Decision:
    """A category and why."""

    category: str
    explanation: Explanation

    def fingerprint(self, *, survey_id: str | None) -> str:
        """What makes two decisions the same outcome: the category, under the same rule set, area
        type and survey, lacking the same indicators. A corrected value that leaves all of
        these unchanged is no new decision (the stored one keeps the values it used, with the
        rule-set digest)."""
        e = self.explanation
        basis = [self.category, e.ruleset_id, e.area_type, sorted(e.missing), survey_id]
        return hashlib.sha256(json.dumps(basis).encode()).hexdigest()[:32]


def classify(ruleset: RuleSet, *, area_type: str, income_per_capita_vnd: int,
             deprivations: dict[str, bool | None]) -> Decision:
    """Classify under `ruleset` (POLICY.md §1–§2).

    Poor: income ≤ line AND deprived in ≥ threshold indicators; near-poor: income ≤ line and
    fewer; middle: line < income ≤ middle line; not poor above. The rule is AND, so the
    deprivation count only matters at or below the line: a missing indicator makes the result
    `incomplete` there (naming it); above the line the category stands and `missing` still lists
    what the survey lacks.
    """
    if area_type not in ruleset.income_lines_vnd:
        raise ValueError(f"unknown area type {area_type!r}")
    line = ruleset.line(area_type)
    middle = ruleset.middle_line(area_type)
    codes = ruleset.indicator_codes
    missing = [c for c in codes if deprivations.get(c) is None]
    deprived = [ruleset.indicator(c) for c in codes if deprivations.get(c) is True]
    ignored = sorted(c for c in deprivations if c not in codes)
    income = income_per_capita_vnd
    count = len(deprived)
    if income <= line:
        if missing:
            category = "incomplete"
        elif count >= ruleset.deprivation_threshold:
            category = "poor"
        else:
            category = "near_poor"
    elif middle is not None and income <= middle:
        category = "middle"
    else:
        category = "not_poor"
    explanation = Explanation(
        ruleset_id=ruleset.id, area_type=area_type, income_per_capita_vnd=income,
        income_line_vnd=line, middle_line_vnd=middle,
        deprived=[{"code": i.code, "name_vi": i.name_vi, "name_en": i.name_en} for i in deprived],
        deprivation_count=count, threshold=ruleset.deprivation_threshold, missing=missing,
        ignored=ignored, legal_basis=list(ruleset.legal_basis),
        text=_text(ruleset, category=category, area_type=area_type, income=income, line=line,
                   middle=middle, deprived=[i.name_en for i in deprived], missing=missing),
    )
    return Decision(category=category, explanation=explanation)


def _vnd(n: int) -> str:
    return f"{n:,} VND"


def _text(ruleset: RuleSet, *, category: str, area_type: str, income: int, line: int,
          middle: int | None, deprived: list[str], missing: list[str]) -> str:
    """One sentence an official can check against the decree."""
    head = (f"{area_type.capitalize()} household under {ruleset.id} ({ruleset.legal_basis[0]}): "
            f"income {_vnd(income)}/person/month")
    listed = f" ({', '.join(deprived)})" if deprived else ""
    counted = (f"deprived in {len(deprived)} of {len(ruleset.indicators)} indicators{listed}, "
               f"threshold {ruleset.deprivation_threshold}")
    if category == "incomplete":
        return (f"{head} ≤ poverty line {_vnd(line)}, but the survey lacks "
                f"{', '.join(missing)}; the deprivation count cannot be decided → incomplete.")
    if category in ("poor", "near_poor"):
        cmp = "≥" if category == "poor" else "<"
        return (f"{head} ≤ poverty line {_vnd(line)} and {counted} ({len(deprived)} {cmp} "
                f"{ruleset.deprivation_threshold}) → {CATEGORY_WORDS[category]}.")
    if category == "middle":
        return (f"{head} > poverty line {_vnd(line)} and ≤ middle line {_vnd(middle or 0)} "
                f"→ middle living standard (deprivations do not count above the line).")
    upper = f"middle line {_vnd(middle)}" if middle is not None else f"poverty line {_vnd(line)}"
    return f"{head} > {upper} → not poor (deprivations do not count above the line)."
