"""DCI social-registry search (spdci/standards social_api v1.0.0): the supported subset of
`search_criteria`, checked into a small query tree, with the spec's reason codes (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

VERSION = "1.0.0"

# SearchStatusReasonCode (per search request) and MsgHeaderStatusReasonCode (per message).
REFERENCE_ID_INVALID = "rjct.reference_id.invalid"
REFERENCE_ID_DUPLICATE = "rjct.reference_id.duplicate"
TIMESTAMP_INVALID = "rjct.timestamp.invalid"
CRITERIA_INVALID = "rjct.search_criteria.invalid"
SORT_INVALID = "rjct.sort.invalid"
PAGINATION_INVALID = "rjct.pagination.invalid"
TOO_MANY = "rjct.search.too_many_records_found"
VERSION_INVALID = "rjct.version.invalid"
MESSAGE_TS_INVALID = "rjct.message_ts.invalid"
ACTION_INVALID = "rjct.action.invalid"
TOTAL_COUNT_INVALID = "rjct.total_count.invalid"
TOTAL_COUNT_LIMIT = "rjct.total_count.limit_exceeded"

ID_TYPES = ("NATIONAL_ID", "HOUSEHOLD_ID")
ENTITIES = ("Group", "Member")
OPERATORS = ("eq", "in", "gt", "lt", "ge", "le")
CONDITIONS = ("and", "or", "not")
# Queryable attributes → their value kind; codes and names take eq/in, the rest every operator.
ATTRIBUTES: dict[str, str] = {
    "province_code": "code", "commune_code": "code", "village": "text", "area_type": "area",
    "member_count": "int", "registration_date": "date",
}
ORDERED = frozenset({"member_count", "registration_date"})
SORTABLE = ("registration_date", "member_count", "province_code", "commune_code", "village")
MAX_PREDICATES = 20
MAX_IN_VALUES = 100
_CODE = re.compile(r"^\d{2}(\d{3})?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class Rejected(Exception):
    """A search request (or message) the registry refuses: a DCI reason code and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Cond:
    """One `attribute operator value` test, the value already of the attribute's kind."""

    attribute: str
    operator: str
    value: Any


@dataclass(frozen=True)
class Bool:
    """`and` / `or` of two parts, or `not` of one."""

    op: str
    parts: tuple[Node, ...]


Node = Cond | Bool


@dataclass(frozen=True)
class Search:
    """One checked search request."""

    entity: str  # Group | Member
    id_type: str | None = None  # idtype-value query
    id_value: str | None = None
    where: tuple[Node, ...] = ()  # predicate query: all must hold
    sort: tuple[tuple[str, bool], ...] = ()  # (attribute, descending)
    page_size: int | None = None  # None: no pagination asked (one bounded answer)
    page_number: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def parse_ts(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with its zone, or None."""
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def _value(attribute: str, value: Any) -> Any:
    kind = ATTRIBUTES[attribute]
    where = f"attribute {attribute!r}"
    if kind == "int":
        if isinstance(value, str) and value.isdigit():  # the spec's schema allows no integer
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise Rejected(CRITERIA_INVALID, f"{where} takes a whole number, not {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise Rejected(CRITERIA_INVALID, f"{where} takes a string, not {value!r}")
    if kind == "date":
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise Rejected(CRITERIA_INVALID, f"{where} takes an ISO date, not {value!r}") from None
    if kind == "code" and not _CODE.fullmatch(value):
        raise Rejected(CRITERIA_INVALID, f"{where} takes a 2- or 5-digit code, not {value!r}")
    if kind == "area" and value not in ("rural", "urban"):
        raise Rejected(CRITERIA_INVALID, f"{where} is rural or urban, not {value!r}")
    if not value or len(value) > 200:
        raise Rejected(CRITERIA_INVALID, f"{where} takes 1 to 200 characters")
    return value


def expression(raw: Any) -> Cond:
    """`{attribute_name, operator, attribute_value}` → a checked condition."""
    if not isinstance(raw, dict):
        raise Rejected(CRITERIA_INVALID, "an expression is an object")
    attribute, operator = raw.get("attribute_name"), raw.get("operator")
    if attribute not in ATTRIBUTES:
        raise Rejected(CRITERIA_INVALID, f"attribute_name {attribute!r} is not searchable; one "
                                         f"of {', '.join(ATTRIBUTES)}")
    if operator not in OPERATORS:
        raise Rejected(CRITERIA_INVALID, f"operator {operator!r}; one of {', '.join(OPERATORS)}")
    if operator not in ("eq", "in") and attribute not in ORDERED:
        raise Rejected(CRITERIA_INVALID, f"operator {operator} does not apply to {attribute}")
    if "attribute_value" not in raw:
        raise Rejected(CRITERIA_INVALID, "attribute_value is required")
    value = raw["attribute_value"]
    if operator == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
            raise Rejected(CRITERIA_INVALID, f"operator in takes a list of 1 to {MAX_IN_VALUES} "
                                             "values")
        return Cond(attribute, operator, tuple(_value(attribute, v) for v in value))
    return Cond(attribute, operator, _value(attribute, value))


def predicate(item: Any) -> Node:
    """One predicate list item: `expression1 [condition expression2]`."""
    if not isinstance(item, dict) or "expression1" not in item:
        raise Rejected(CRITERIA_INVALID, "each predicate has an expression1")
    first = expression(item["expression1"])
    condition = item.get("condition")
    second = item.get("expression2")
    if condition is None:
        if second is not None:
            raise Rejected(CRITERIA_INVALID, "expression2 needs a condition")
        return first
    if condition not in CONDITIONS:
        raise Rejected(CRITERIA_INVALID, f"condition {condition!r}; one of and, or, not")
    if second is None:
        if condition != "not":
            raise Rejected(CRITERIA_INVALID, f"condition {condition} needs an expression2")
        return Bool("not", (first,))
    if condition == "not":  # expression1 and not expression2
        return Bool("and", (first, Bool("not", (expression(second),))))
    return Bool(condition, (first, expression(second)))


def _sort(raw: Any) -> tuple[tuple[str, bool], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > len(SORTABLE):
        raise Rejected(SORT_INVALID, f"sort is a list of at most {len(SORTABLE)} items")
    out = []
    for item in raw:
        name = item.get("attribute_name") if isinstance(item, dict) else None
        order = item.get("sort_order", "asc") if isinstance(item, dict) else None
        if name not in SORTABLE or order not in ("asc", "desc"):
            raise Rejected(SORT_INVALID, f"sort by one of {', '.join(SORTABLE)}, asc or desc")
        out.append((name, order == "desc"))
    return tuple(out)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    return int(value)


def _pagination(raw: Any, *, max_page_size: int) -> tuple[int | None, int]:
    if raw is None:
        return None, 1
    if not isinstance(raw, dict):
        raise Rejected(PAGINATION_INVALID, "pagination is an object")
    size, number = _whole(raw.get("page_size")), _whole(raw.get("page_number", 1))
    if size is None or not 1 <= size <= max_page_size:
        raise Rejected(PAGINATION_INVALID, f"page_size is 1 to {max_page_size}")
    if number is None or not 1 <= number <= 1_000_000:
        raise Rejected(PAGINATION_INVALID, "page_number counts from 1")
    return size, number


def criteria(raw: Any, *, max_page_size: int) -> Search:
    """`search_criteria` → a checked search (Rejected with the first problem)."""
    if not isinstance(raw, dict):
        raise Rejected(CRITERIA_INVALID, "search_criteria is an object")
    if raw.get("version", VERSION) != VERSION:
        raise Rejected(CRITERIA_INVALID, f"search_criteria version {VERSION} only")
    entity = raw.get("response_entity", "Group")
    if entity not in ENTITIES:
        raise Rejected(CRITERIA_INVALID, "response_entity is Group or Member")
    query_type, query = raw.get("query_type"), raw.get("query")
    sort = _sort(raw.get("sort"))
    size, number = _pagination(raw.get("pagination"), max_page_size=max_page_size)
    common = {"entity": entity, "sort": sort, "page_size": size, "page_number": number}
    if query_type == "idtype-value":
        if not isinstance(query, dict):
            raise Rejected(CRITERIA_INVALID, "an idtype-value query is {type, value}")
        id_type, value = query.get("type"), query.get("value")
        if id_type not in ID_TYPES:
            raise Rejected(CRITERIA_INVALID, f"identifier type {id_type!r}; one of "
                                             f"{', '.join(ID_TYPES)}")
        if not isinstance(value, str) or not (
                re.fullmatch(r"\d{12}", value) if id_type == "NATIONAL_ID"
                else _UUID.fullmatch(value)):
            raise Rejected(CRITERIA_INVALID, f"{id_type} value is "
                           + ("12 digits" if id_type == "NATIONAL_ID" else "a household UUID"))
        return Search(id_type=id_type, id_value=value, **common)  # type: ignore[arg-type]
    if query_type == "predicate":
        if not isinstance(query, list) or not 1 <= len(query) <= MAX_PREDICATES:
            raise Rejected(CRITERIA_INVALID, f"a predicate query is a list of 1 to "
                                             f"{MAX_PREDICATES} predicates")
        items = sorted(query, key=lambda i: _whole(i.get("seq_num", 0)) or 0
                       if isinstance(i, dict) else 0)
        return Search(where=tuple(predicate(i) for i in items), **common)  # type: ignore[arg-type]
    raise Rejected(CRITERIA_INVALID, f"query_type {query_type!r} is not supported; "
                                     "idtype-value or predicate")


def duplicates(reference_ids: list[Any]) -> set[str]:
    """reference_ids that occur more than once in one message."""
    seen: set[str] = set()
    twice: set[str] = set()
    for ref in reference_ids:
        if isinstance(ref, str):
            (twice if ref in seen else seen).add(ref)
    return twice


def header_problem(header: dict[str, Any], *, request_count: int,
                   max_requests: int) -> Rejected | None:
    """What is wrong with a search message's header, or None."""
    if header.get("version", VERSION) != VERSION:
        return Rejected(VERSION_INVALID, f"version {VERSION} only")
    if header.get("action") != "search":
        return Rejected(ACTION_INVALID, "action is search")
    if parse_ts(header.get("message_ts")) is None:
        return Rejected(MESSAGE_TS_INVALID, "message_ts is an ISO 8601 time with its zone")
    if header.get("total_count") != request_count:
        return Rejected(TOTAL_COUNT_INVALID, f"total_count is {header.get('total_count')!r} "
                                             f"but search_request holds {request_count}")
    if request_count > max_requests:
        return Rejected(TOTAL_COUNT_LIMIT, f"at most {max_requests} search requests a message")
    return None


def split_name(full_name: str) -> dict[str, str]:
    """A Vietnamese full name (family name first) as DCI Name parts."""
    words = full_name.split()
    if len(words) < 2:
        return {"given_name": full_name}
    out = {"sur_name": words[0], "given_name": words[-1]}
    if len(words) > 2:
        out["second_name"] = " ".join(words[1:-1])
    return out


def backoff_s(attempt: int, *, base_s: float, max_s: float) -> float:
    """Wait before the attempt after `attempt` failed ones: base·2^(n-1), capped."""
    return min(base_s * 2 ** max(attempt - 1, 0), max_s)
