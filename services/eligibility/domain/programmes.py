"""Programmes as data: which recognized standing each needs, and the reason in words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from services.eligibility.domain.classify import CATEGORY_WORDS
from services.eligibility.domain.standing import RECOGNIZABLE, Standing

Verdict = tuple[bool, str]


class ProgrammeError(ValueError):
    """A programmes document that cannot be used (names the programme and field)."""


@dataclass(frozen=True)
class Programme:
    """One programme a household may join, with its rule (a small tree of conditions)."""

    code: str
    name_en: str
    name_vi: str
    rule: dict[str, Any]
    legal_basis: str = ""


@dataclass(frozen=True)
class Catalogue:
    """Every programme, and the length of the "just escaped" period."""

    programmes: tuple[Programme, ...]
    just_escaped_months: int


@dataclass(frozen=True)
class ProgramStatus:
    """Eligibility for one programme, with the reason either way."""

    program_code: str
    name: str
    eligible: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Plain data (all fields are scalars: no deep copy needed)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_rule(rule: Any, where: str) -> None:
    if not isinstance(rule, dict) or len(rule) != 1:
        raise ProgrammeError(f"{where}: a rule is one of category, just_escaped, deprived, "
                             f"all_of, any_of")
    (kind, arg), = rule.items()
    if kind in ("all_of", "any_of"):
        if not isinstance(arg, list) or not arg:
            raise ProgrammeError(f"{where}.{kind}: must list rules")
        for n, sub in enumerate(arg):
            _check_rule(sub, f"{where}.{kind}[{n}]")
    elif kind == "category":
        if not isinstance(arg, list) or not arg or not set(arg) <= set(RECOGNIZABLE):
            raise ProgrammeError(f"{where}.category: must list categories of {RECOGNIZABLE}")
    elif kind == "just_escaped":
        if arg is not True:
            raise ProgrammeError(f"{where}.just_escaped: must be true")
    elif kind == "deprived":
        if not isinstance(arg, str) or not arg:
            raise ProgrammeError(f"{where}.deprived: must name an indicator code")
    else:
        raise ProgrammeError(f"{where}: unknown rule {kind!r}")


def parse(raw: Any) -> Catalogue:
    """Validate the programmes document (already parsed from YAML)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("programmes"), list):
        raise ProgrammeError("programmes: must be a list")
    months = raw.get("just_escaped_months")
    if isinstance(months, bool) or not isinstance(months, int) or months <= 0:
        raise ProgrammeError("just_escaped_months: must be a positive whole number")
    out: list[Programme] = []
    for n, item in enumerate(raw["programmes"]):
        code = item.get("code") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code:
            raise ProgrammeError(f"programmes[{n}].code: required")
        if any(p.code == code for p in out):
            raise ProgrammeError(f"programmes[{n}].code: {code} is defined twice")
        _check_rule(item.get("rule"), f"{code}.rule")
        out.append(Programme(code=code, name_en=str(item.get("name_en") or code),
                             name_vi=str(item.get("name_vi") or ""), rule=item["rule"],
                             legal_basis=str(item.get("legal_basis") or "")))
    return Catalogue(programmes=tuple(out), just_escaped_months=months)


def _since(s: Standing) -> str:
    return f" since {s.recognized_on.isoformat()}" if s.recognized_on else ""


def _verdict(rule: dict[str, Any], s: Standing, today: date, months: int,
             names: Mapping[str, str]) -> Verdict:
    (kind, arg), = rule.items()
    if kind == "all_of":
        parts = [_verdict(r, s, today, months, names) for r in arg]
        failed = [why for ok, why in parts if not ok]
        return (not failed, "; ".join(failed) if failed else "; ".join(why for _, why in parts))
    if kind == "any_of":
        parts = [_verdict(r, s, today, months, names) for r in arg]
        passed = [why for ok, why in parts if ok]
        return (bool(passed), passed[0] if passed else " and ".join(why for _, why in parts))
    if kind == "category":
        wanted = " or ".join(CATEGORY_WORDS[c] for c in arg)
        if s.category in arg:
            return True, f"recognized {CATEGORY_WORDS[s.category or '']} household{_since(s)}"
        return False, (f"recognized {CATEGORY_WORDS[s.category or '']}{_since(s)}; the programme "
                       f"is for recognized {wanted} households")
    if kind == "just_escaped":
        if s.just_escaped(today):
            return True, (f"escaped poverty on {s.escaped_poverty_on}: 'just escaped' until "
                          f"{s.just_escaped_until} ({months} months)")
        if s.category == "poor":
            return False, "still recognized poor, so not a household that just escaped poverty"
        if s.just_escaped_until is None:
            return False, f"has not escaped poverty in the last {months} months"
        return False, (f"escaped poverty on {s.escaped_poverty_on}; the {months} months of "
                       f"'just escaped' ended on {s.just_escaped_until}")
    name = names.get(arg, arg)
    if arg in s.deprived:
        return True, f"deprived in {name}"
    return False, f"not deprived in {name} at recognition"


def evaluate(catalogue: Catalogue, standing: Standing, *, today: date,
             indicator_names: Mapping[str, str] | None = None) -> list[ProgramStatus]:
    """Every programme for a household's recognized standing on `today`, with reasons."""
    names = indicator_names or {}
    out = []
    for p in catalogue.programmes:
        if standing.archived:
            ok, why = False, "the household is archived in the registry"
        elif standing.category is None:
            ok, why = False, ("no recognized classification yet: the commune has not approved a "
                              "posting that lists this household")
        else:
            ok, why = _verdict(p.rule, standing, today, catalogue.just_escaped_months, names)
        out.append(ProgramStatus(program_code=p.code, name=p.name_en, eligible=ok, reason=why))
    return out
