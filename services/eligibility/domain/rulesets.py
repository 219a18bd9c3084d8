"""Poverty standards as data: rule sets, their validation, and the choice by survey date."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

AREA_TYPES = ("rural", "urban")


class RuleSetError(ValueError):
    """A rule-set document that cannot be used (names the file, the field and why)."""


class NoRuleSet(LookupError):
    """No rule set is in force on that date (for that province)."""


@dataclass(frozen=True)
class Dimension:
    """One of the standard's dimensions (employment, health …)."""

    code: str
    name_vi: str
    name_en: str


@dataclass(frozen=True)
class Indicator:
    """A deprivation indicator: names as the decree gives them, dimension, deprivation test."""

    code: str
    name_vi: str
    name_en: str
    dimension: str
    definition: str
    unconfirmed: bool = False


@dataclass(frozen=True)
class Unconfirmed:
    """A value not yet checked against the official text."""

    path: str
    note: str = ""


@dataclass(frozen=True)
class RuleSet:
    """One poverty standard: effective dates, income lines and bands, indicators, threshold."""

    id: str
    title: str
    legal_basis: tuple[str, ...]
    effective_from: date
    effective_to: date
    income_lines_vnd: dict[str, int]
    middle_lines_vnd: dict[str, int] | None
    deprivation_threshold: int
    dimensions: tuple[Dimension, ...]
    indicators: tuple[Indicator, ...]
    title_vi: str = ""
    income_measure: str = "average income per person per month, VND"
    extends: str | None = None
    province_codes: tuple[str, ...] = ()
    unconfirmed: tuple[Unconfirmed, ...] = ()
    notes: str = ""
    digest: str = ""
    source: str = ""
    _by_code: dict[str, Indicator] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_code.update({i.code: i for i in self.indicators})

    @property
    def is_local(self) -> bool:
        """A province's local override of a national rule set."""
        return bool(self.province_codes)

    @property
    def indicator_codes(self) -> tuple[str, ...]:
        """The indicators a survey must answer for this rule set."""
        return tuple(i.code for i in self.indicators)

    def indicator(self, code: str) -> Indicator:
        """An indicator by code (KeyError when the rule set does not use it)."""
        return self._by_code[code]

    def covers(self, day: date) -> bool:
        """Whether `day` falls in the effective dates (both ends included)."""
        return self.effective_from <= day <= self.effective_to

    def line(self, area_type: str) -> int:
        """The poverty income line for an area type."""
        return self.income_lines_vnd[area_type]

    def middle_line(self, area_type: str) -> int | None:
        """Upper bound of the middle living standard band (None: no such band)."""
        return None if self.middle_lines_vnd is None else self.middle_lines_vnd[area_type]

    def is_unconfirmed(self, path: str) -> bool:
        """Whether a value (dotted path) is marked unconfirmed, itself or through a parent."""
        return any(path == u.path or path.startswith(u.path + ".") for u in self.unconfirmed)


def _fail(source: str, path: str, message: str) -> RuleSetError:
    return RuleSetError(f"{source}: {path}: {message}")


def _text(raw: dict[str, Any], key: str, source: str, *, where: str = "",
          required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, where + key, "must be a non-empty text")
    return value.strip()


def _date(raw: dict[str, Any], key: str, source: str) -> date:
    value = raw.get(key)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _fail(source, key, f"must be a date YYYY-MM-DD, got {value!r}") from None


def _lines(raw: Any, key: str, source: str) -> dict[str, int]:
    if not isinstance(raw, dict) or set(raw) != set(AREA_TYPES):
        raise _fail(source, key, f"must give exactly {' and '.join(AREA_TYPES)}")
    for area, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _fail(source, f"{key}.{area}", "must be a positive whole number of VND")
    return {a: int(raw[a]) for a in AREA_TYPES}


def _unconfirmed(raw: Any, source: str) -> tuple[Unconfirmed, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(source, "unconfirmed", "must be a list of {path, note}")
    out = []
    for n, item in enumerate(raw):
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise _fail(source, f"unconfirmed[{n}]", "needs a path")
        out.append(Unconfirmed(path=item["path"], note=str(item.get("note") or "").strip()))
    return tuple(out)


def digest(raw: dict[str, Any]) -> str:
    """A short fingerprint of a rule-set document (which version of the data decided)."""
    body = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(body).hexdigest()[:16]


def parse(raw: Any, *, source: str = "rule set", base: RuleSet | None = None) -> RuleSet:
    """Validate one rule-set document (already parsed from YAML/JSON) into a RuleSet.

    A local override (`extends`) needs its `base`; it inherits what it does not give and may only
    raise the income lines.
    """
    if not isinstance(raw, dict):
        raise _fail(source, "(document)", "must be a mapping")
    rid = _text(raw, "id", source)
    source = f"{source} ({rid})" if rid not in source else source
    extends = raw.get("extends")
    if extends is not None and (base is None or base.id != extends):
        raise _fail(source, "extends", f"unknown base rule set {extends!r}")
    if base is not None and base.is_local:
        raise _fail(source, "extends", "a local override cannot extend another override")
    basis = raw.get("legal_basis")
    if isinstance(basis, str):
        basis = [basis]
    if not isinstance(basis, list) or not basis or not all(isinstance(b, str) for b in basis):
        raise _fail(source, "legal_basis", "must name at least one legal text")
    start, end = _date(raw, "effective_from", source), _date(raw, "effective_to", source)
    if end < start:
        raise _fail(source, "effective_to", "is before effective_from")
    provinces = raw.get("province_codes") or []
    if not isinstance(provinces, list) or not all(isinstance(p, str) and p for p in provinces):
        raise _fail(source, "province_codes", "must be a list of province codes")
    if extends is not None and not provinces:
        raise _fail(source, "province_codes", "a local override must name its provinces")
    if extends is None and provinces:
        raise _fail(source, "extends", "a provincial rule set must extend a national one")

    if base is not None:
        for key in ("deprivation_threshold", "indicators", "dimensions"):
            if key in raw:
                raise _fail(source, key, "a local override only changes lines and dates")
        lines = _lines(raw.get("income_lines_vnd", base.income_lines_vnd), "income_lines_vnd",
                       source)
        middle_raw = raw.get("middle_lines_vnd", base.middle_lines_vnd)
        for area in AREA_TYPES:
            if lines[area] < base.income_lines_vnd[area]:
                raise _fail(source, f"income_lines_vnd.{area}",
                            f"a local line may only be higher than {base.id}'s "
                            f"{base.income_lines_vnd[area]:,}")
        return _finish(raw, source, rid=rid, title=_text(raw, "title", source),
                       basis=tuple(basis), start=start, end=end, lines=lines,
                       middle_raw=middle_raw, threshold=base.deprivation_threshold,
                       dimensions=base.dimensions, indicators=base.indicators,
                       provinces=tuple(provinces), extends=base.id,
                       inherited=base.unconfirmed)

    dims_raw = raw.get("dimensions")
    if not isinstance(dims_raw, list) or not dims_raw:
        raise _fail(source, "dimensions", "must list the dimensions")
    dimensions = []
    for n, d in enumerate(dims_raw):
        if not isinstance(d, dict):
            raise _fail(source, f"dimensions[{n}]", "must be a mapping")
        dimensions.append(Dimension(code=_text(d, "code", source, where=f"dimensions[{n}]."),
                                    name_vi=_text(d, "name_vi", source, where=f"dimensions[{n}]."),
                                    name_en=_text(d, "name_en", source, where=f"dimensions[{n}].")))
    dim_codes = {d.code for d in dimensions}
    if len(dim_codes) != len(dimensions):
        raise _fail(source, "dimensions", "a dimension code is given twice")
    ind_raw = raw.get("indicators")
    if not isinstance(ind_raw, list) or not ind_raw:
        raise _fail(source, "indicators", "must list the indicators")
    unconfirmed = _unconfirmed(raw.get("unconfirmed"), source)
    flagged = {u.path for u in unconfirmed}
    indicators = []
    for n, i in enumerate(ind_raw):
        where = f"indicators[{n}]."
        if not isinstance(i, dict):
            raise _fail(source, f"indicators[{n}]", "must be a mapping")
        code = _text(i, "code", source, where=where)
        dim = _text(i, "dimension", source, where=where)
        if dim not in dim_codes:
            raise _fail(source, where + "dimension", f"unknown dimension {dim!r}")
        indicators.append(Indicator(
            code=code, name_vi=_text(i, "name_vi", source, where=where),
            name_en=_text(i, "name_en", source, where=where), dimension=dim,
            definition=_text(i, "definition", source, where=where),
            unconfirmed=bool(i.get("unconfirmed")) or any(
                p in flagged for p in ("indicators", f"indicators.{code}",
                                       f"indicators.{code}.definition"))))
    codes = [i.code for i in indicators]
    if len(set(codes)) != len(codes):
        raise _fail(source, "indicators", "an indicator code is given twice")
    threshold = raw.get("deprivation_threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not (
            1 <= threshold <= len(indicators)):
        raise _fail(source, "deprivation_threshold",
                    f"must be a whole number from 1 to {len(indicators)}")
    return _finish(raw, source, rid=rid, title=_text(raw, "title", source), basis=tuple(basis),
                   start=start, end=end, lines=_lines(raw.get("income_lines_vnd"),
                                                      "income_lines_vnd", source),
                   middle_raw=raw.get("middle_lines_vnd"), threshold=threshold,
                   dimensions=tuple(dimensions), indicators=tuple(indicators), provinces=(),
                   extends=None, inherited=())


def _finish(raw: dict[str, Any], source: str, *, rid: str, title: str, basis: tuple[str, ...],
            start: date, end: date, lines: dict[str, int], middle_raw: Any, threshold: int,
            dimensions: tuple[Dimension, ...], indicators: tuple[Indicator, ...],
            provinces: tuple[str, ...], extends: str | None,
            inherited: tuple[Unconfirmed, ...]) -> RuleSet:
    middle = None if middle_raw is None else _lines(middle_raw, "middle_lines_vnd", source)
    if middle is not None:
        for area in AREA_TYPES:
            if middle[area] <= lines[area]:
                raise _fail(source, f"middle_lines_vnd.{area}",
                            "must be above the income line of the same area")
    own = _unconfirmed(raw.get("unconfirmed"), source)
    known_roots = {"income_lines_vnd", "middle_lines_vnd", "deprivation_threshold", "indicators",
                   "dimensions", "effective_from", "effective_to", "title", "legal_basis"}
    for u in own:
        if u.path.split(".")[0] not in known_roots:
            raise _fail(source, "unconfirmed", f"unknown path {u.path!r}")
    return RuleSet(
        id=rid, title=title, title_vi=str(raw.get("title_vi") or ""), legal_basis=basis,
        effective_from=start, effective_to=end, income_lines_vnd=lines, middle_lines_vnd=middle,
        deprivation_threshold=threshold, dimensions=dimensions, indicators=indicators,
        income_measure=str(raw.get("income_measure") or "average income per person per month, VND"),
        extends=extends, province_codes=provinces,
        unconfirmed=own + tuple(u for u in inherited if u.path.startswith(("indicators", "dim"))),
        notes=str(raw.get("notes") or "").strip(), digest=digest(raw), source=source,
    )
