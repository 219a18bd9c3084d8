"""Administrative units (provinces → communes): parsing and checking the reference list."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass

from services.registry.domain.households import Violation

COLUMNS = ("code", "level", "name", "parent_code", "area_type")
LEVELS = ("province", "commune")
AREA_TYPES = ("rural", "urban")
_PROVINCE = re.compile(r"^\d{2}$")
_COMMUNE = re.compile(r"^\d{5}$")


@dataclass(frozen=True)
class AdminUnit:
    """A province (2-digit code) or a commune-level unit (5 digits) with its default area type."""

    code: str
    level: str
    name: str
    parent_code: str | None
    area_type: str | None


def parse_csv(lines: Iterable[str]) -> tuple[list[AdminUnit], list[tuple[int, Violation]]]:
    """Read `code,level,name,parent_code,area_type` rows; return the units and (line, violation)s.

    Every commune's parent must be a province of the same file or of `known_provinces` (checked by
    the caller against the table); within the file a code may appear once."""
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [(1, Violation("header", f"missing column(s): {', '.join(missing)}; "
                                            f"expected {','.join(COLUMNS)}"))]
    units: list[AdminUnit] = []
    errors: list[tuple[int, Violation]] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        code = (row.get("code") or "").strip()
        level = (row.get("level") or "").strip()
        name = (row.get("name") or "").strip()
        parent = (row.get("parent_code") or "").strip() or None
        area = (row.get("area_type") or "").strip() or None
        bad: list[Violation] = []
        if level not in LEVELS:
            bad.append(Violation("level", f"{level!r} is not one of {', '.join(LEVELS)}"))
        elif level == "province":
            if not _PROVINCE.match(code):
                bad.append(Violation("code", f"province code {code!r} must be 2 digits"))
            if parent:
                bad.append(Violation("parent_code", "a province has no parent"))
        else:
            if not _COMMUNE.match(code):
                bad.append(Violation("code", f"commune code {code!r} must be 5 digits"))
            if not parent or not _PROVINCE.match(parent):
                bad.append(Violation("parent_code", "a commune needs its 2-digit province code"))
            if area not in AREA_TYPES:
                bad.append(Violation("area_type", f"{area!r} is not one of rural, urban"))
        if not name:
            bad.append(Violation("name", "required"))
        if code in seen:
            bad.append(Violation("code", f"{code} appears twice"))
        seen.add(code)
        if bad:
            errors.extend((line, v) for v in bad)
            continue
        units.append(AdminUnit(code=code, level=level, name=name, parent_code=parent,
                               area_type=area if level == "commune" else None))
    return units, errors


def unknown_parents(units: Iterable[AdminUnit], known_provinces: set[str]) -> list[Violation]:
    """Communes whose province is neither in the file nor already known."""
    provinces = known_provinces | {u.code for u in units if u.level == "province"}
    return [Violation("parent_code", f"commune {u.code}: unknown province {u.parent_code}")
            for u in units if u.level == "commune" and u.parent_code not in provinces]


def location_violations(*, province_code: str, commune_code: str,
                        communes: dict[str, tuple[str, str]], prefix: str = "location."
                        ) -> list[Violation]:
    """The commune must exist and belong to the province (`communes`: code → (province, area))."""
    found = communes.get(commune_code)
    if found is None:
        return [Violation(f"{prefix}commune_code", f"unknown commune {commune_code}")]
    if found[0] != province_code:
        return [Violation(f"{prefix}province_code",
                          f"commune {commune_code} belongs to province {found[0]}, "
                          f"not {province_code}")]
    return []
