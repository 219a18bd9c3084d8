"""All loaded rule sets: consistency across them, and the choice by survey date and province."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.eligibility.domain.rulesets import NoRuleSet, RuleSet, RuleSetError, parse


class RuleBook:
    """All loaded rule sets; picks the one in force for a survey date (and province)."""

    def __init__(self, rulesets: list[RuleSet]) -> None:
        self.by_id: dict[str, RuleSet] = {}
        for rs in rulesets:
            if rs.id in self.by_id:
                raise RuleSetError(f"{rs.source}: id: rule set {rs.id} is defined twice")
            self.by_id[rs.id] = rs
        ordered = sorted(rulesets, key=lambda r: r.effective_from)
        for a in ordered:
            for b in ordered:
                if a.id < b.id and _overlap(a, b) and _same_territory(a, b):
                    raise RuleSetError(f"{b.source}: effective_from: {a.id} and {b.id} are both "
                                       f"in force on {max(a.effective_from, b.effective_from)}"
                                       f" for the same territory")
        self.all = tuple(ordered)

    def get(self, ruleset_id: str) -> RuleSet:
        """A rule set by id (KeyError when unknown)."""
        return self.by_id[ruleset_id]

    def select(self, survey_date: date, province_code: str | None = None) -> RuleSet:
        """The rule set in force on the survey date; a province's local override wins."""
        national = None
        for rs in self.all:
            if not rs.covers(survey_date):
                continue
            if rs.is_local:
                if province_code is not None and province_code in rs.province_codes:
                    return rs
            else:
                national = rs
        if national is None:
            raise NoRuleSet(f"no rule set is in force on {survey_date.isoformat()}")
        return national

    @property
    def indicator_codes(self) -> frozenset[str]:
        """Every indicator code any rule set uses."""
        return frozenset(c for rs in self.all for c in rs.indicator_codes)


def _overlap(a: RuleSet, b: RuleSet) -> bool:
    return a.effective_from <= b.effective_to and b.effective_from <= a.effective_to


def _same_territory(a: RuleSet, b: RuleSet) -> bool:
    if not a.is_local and not b.is_local:
        return True
    return bool(set(a.province_codes) & set(b.province_codes))


def build(documents: list[tuple[str, Any]]) -> RuleBook:
    """Validate (source, document) pairs — national ones first, then the overrides of them."""
    national = [(s, d) for s, d in documents if not (isinstance(d, dict) and d.get("extends"))]
    local = [(s, d) for s, d in documents if isinstance(d, dict) and d.get("extends")]
    parsed = {rs.id: rs for rs in (parse(d, source=s) for s, d in national)}
    if len(parsed) != len(national):
        raise RuleSetError("a national rule-set id is defined twice")
    out = list(parsed.values())
    for s, d in local:
        out.append(parse(d, source=s, base=parsed.get(str(d.get("extends")))))
    return RuleBook(out)
