"""Bulk-import line readers (NDJSON and the flat CSV layout), streaming, one household at a time."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from services.registry.domain.households import INDICATOR_CODES, Violation

MAX_MEMBERS = 60
HOUSEHOLD_COLUMNS = ("external_ref", "area_type", "province_code", "commune_code", "village",
                     "address", "phone")
MEMBER_COLUMNS = ("full_name", "national_id", "date_of_birth", "sex", "relation", "ethnicity",
                  "disability")
SURVEY_COLUMNS = ("survey_date", "review_round", "income_per_capita_vnd", "surveyor", "notes")
DEPRIVATION_PREFIX = "dep_"
FACT_PREFIX = "fact_"
TRUE = {"1", "true", "yes", "y", "x"}
FALSE = {"0", "false", "no", "n"}

CSV_LAYOUT = f"""\
**CSV layout** (UTF-8, header row, comma-separated): one row per *member*; consecutive rows with
the same `external_ref` form one household. Household and survey columns are read from the first
row of the group (they may be left blank on the following rows).

- household: {", ".join(f"`{c}`" for c in HOUSEHOLD_COLUMNS)}
- member: {", ".join(f"`{c}`" for c in MEMBER_COLUMNS)} (`disability`: 1/0, true/false, yes/no)
- survey (optional; present when `survey_date` is filled): {", ".join(f"`{c}`" for c in SURVEY_COLUMNS)}
- deprivations: one column per indicator, `dep_<code>` with 1/0 (blank: not assessed), codes:
  {", ".join(f"`{c}`" for c in INDICATOR_CODES)}
- facts: any `fact_<name>` column (e.g. `fact_housing_area_m2`); numbers are read as numbers.

Error lines refer to the physical line of the row (line 1 is the header).
"""

VISIT_COLUMNS = ("external_ref", "household_id", "household_external_ref", "cadre_id",
                 "visited_on", "outcome", "note", "next_visit_due", "review_round")

VISIT_CSV_LAYOUT = f"""\
**CSV layout of visits** (`kind=visits`; UTF-8, header row, comma-separated): one row per visit,
columns {", ".join(f"`{c}`" for c in VISIT_COLUMNS)}. Give the household by `household_id` or
by `household_external_ref` (the household's own `external_ref`), not both; blank cells are
absent values; dates are `YYYY-MM-DD`. Error lines refer to the physical line of the row (line 1
is the header).
"""


@dataclass
class RawLine:
    """One household read from a file: its line, the body (POST /v1/households + survey), errors."""

    line: int
    body: dict[str, Any] | None
    errors: list[Violation] = field(default_factory=list)
    member_lines: list[int] = field(default_factory=list)

    @property
    def external_ref(self) -> str | None:
        """The idempotency key, if readable."""
        ref = (self.body or {}).get("external_ref")
        return ref if isinstance(ref, str) else None


def content_hash(value: Any) -> str:
    """A stable digest of a JSON-able value (re-imports of unchanged lines are recognised)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Bounded:
    """The lines of a text file, each read with a bound (a line longer than `limit` characters
    is never held in memory: it reads as an empty line and its number is kept in `too_long`)."""

    def __init__(self, fh: Any, limit: int) -> None:
        self.fh, self.limit = fh, limit
        self.number = 0
        self.too_long: list[int] = []

    def __iter__(self) -> Iterator[str]:
        while True:
            text = self.fh.readline(self.limit + 1)
            if not text:
                return
            self.number += 1
            if len(text) > self.limit and not text.endswith("\n"):
                while text and not text.endswith("\n"):  # skip the rest of the line
                    text = self.fh.readline(self.limit + 1)
                self.too_long.append(self.number)
                yield "\n"
                continue
            yield text

    def rejected(self) -> Iterator[RawLine]:
        """An error line for each too-long line seen so far (then forgotten)."""
        while self.too_long:
            yield RawLine(self.too_long.pop(0), None, [Violation(
                "line", f"longer than {self.limit} characters: not read")])


def ndjson_lines(lines: Iterable[str]) -> Iterator[RawLine]:
    """Each non-blank line one JSON object: the POST /v1/households body, `external_ref`, `survey`."""
    for number, text in enumerate(lines, start=1):
        if isinstance(lines, Bounded):
            yield from lines.rejected()
        if not text.strip():
            continue
        try:
            body = json.loads(text)
        except ValueError as exc:
            yield RawLine(number, None, [Violation("line", f"not valid JSON: {exc}")])
            continue
        if not isinstance(body, dict):
            yield RawLine(number, None, [Violation("line", "not a JSON object")])
            continue
        yield RawLine(number, body)


def _blank(v: str | None) -> bool:
    return v is None or not v.strip()


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _bool(text: str, field_name: str, errors: list[Violation]) -> bool | None:
    t = text.strip().lower()
    if t in TRUE:
        return True
    if t in FALSE:
        return False
    errors.append(Violation(field_name, f"{text!r} is not 1/0, true/false or yes/no"))
    return None


def _household_part(row: dict[str, str], errors: list[Violation]) -> dict[str, Any]:
    body: dict[str, Any] = {"external_ref": row.get("external_ref", "").strip()}
    if not _blank(row.get("area_type")):
        body["area_type"] = row["area_type"].strip()
    body["location"] = {k: (row.get(k) or "").strip()
                        for k in ("province_code", "commune_code", "village")}
    for k in ("address", "phone"):
        if not _blank(row.get(k)):
            body[k] = row[k].strip()
    if not _blank(row.get("survey_date")):
        survey: dict[str, Any] = {}
        for k in SURVEY_COLUMNS:
            if not _blank(row.get(k)):
                survey[k] = row[k].strip()
        income = survey.get("income_per_capita_vnd")
        if isinstance(income, str):
            survey["income_per_capita_vnd"] = _number(income)
        deprivations: dict[str, Any] = {}
        facts: dict[str, Any] = {}
        for k, v in row.items():
            if k is None or _blank(v):
                continue
            if k.startswith(DEPRIVATION_PREFIX):
                deprivations[k[len(DEPRIVATION_PREFIX):]] = _bool(v, f"survey.deprivations."
                                                                     f"{k[len(DEPRIVATION_PREFIX):]}",
                                                                  errors)
            elif k.startswith(FACT_PREFIX):
                facts[k[len(FACT_PREFIX):]] = _number(v.strip())
        survey["deprivations"] = deprivations
        if facts:
            survey["facts"] = facts
        body["survey"] = survey
    return body


def _member_part(row: dict[str, str], index: int, errors: list[Violation]) -> dict[str, Any]:
    member: dict[str, Any] = {}
    for k in MEMBER_COLUMNS:
        v = row.get(k)
        if _blank(v):
            continue
        assert v is not None
        member[k] = _bool(v, f"members.{index}.disability", errors) if k == "disability" \
            else v.strip()
    return member


def csv_lines(lines: Iterable[str]) -> Iterator[RawLine]:
    """Group the flat CSV layout (one row per member) into one RawLine per household."""
    reader = csv.DictReader(lines)
    fields = reader.fieldnames or []
    missing = [c for c in ("external_ref", "commune_code", "full_name") if c not in fields]
    if missing:
        yield RawLine(1, None, [Violation("header", f"missing column(s): {', '.join(missing)}")])
        return
    current: RawLine | None = None
    for row in reader:
        if isinstance(lines, Bounded):
            yield from lines.rejected()
        line = reader.line_num
        ref = (row.get("external_ref") or "").strip()
        if current is not None and ref and ref == current.external_ref:
            assert current.body is not None
            index = len(current.body["members"])
            if index >= MAX_MEMBERS:
                if index == MAX_MEMBERS:
                    current.errors.append(Violation("members", f"more than {MAX_MEMBERS} members"))
                    current.body["members"].append({})
                continue
            current.body["members"].append(_member_part(row, index, current.errors))
            current.member_lines.append(line)
            continue
        if current is not None:
            yield current
        errors: list[Violation] = []
        body = _household_part(row, errors)
        body["members"] = [_member_part(row, 0, errors)]
        current = RawLine(line, body, errors, [line])
    if current is not None:
        yield current
    if isinstance(lines, Bounded):
        yield from lines.rejected()


def visit_csv_lines(lines: Iterable[str]) -> Iterator[RawLine]:
    """One RawLine per CSV row of the visit layout (blank cells left out of the body)."""
    reader = csv.DictReader(lines)
    fields = reader.fieldnames or []
    missing = [c for c in ("external_ref", "cadre_id", "visited_on", "outcome") if c not in fields]
    if not {"household_id", "household_external_ref"} & set(fields):
        missing.append("household_id or household_external_ref")
    if missing:
        yield RawLine(1, None, [Violation("header", f"missing column(s): {', '.join(missing)}")])
        return
    unknown = [c for c in fields if c not in VISIT_COLUMNS]
    for row in reader:
        if isinstance(lines, Bounded):
            yield from lines.rejected()
        body = {k: v.strip() for k, v in row.items()
                if k in VISIT_COLUMNS and isinstance(v, str) and v.strip()}
        errors = [Violation(c, "unknown column") for c in unknown if not _blank(row.get(c))]
        if None in row:  # more cells than header columns
            errors.append(Violation("line", "more cells than columns in the header"))
        yield RawLine(reader.line_num, body, errors)
    if isinstance(lines, Bounded):
        yield from lines.rejected()
