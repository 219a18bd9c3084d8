"""Personal identifiers for roles that only read: national IDs masked to their last 3 digits,
birth dates cut to the year, phones left out (the platform's least-privilege rule)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

NATIONAL_ID, DATE_OF_BIRTH, PHONE = "national_id", "date_of_birth", "phone"
PERSONAL_KEYS = frozenset({NATIONAL_ID, DATE_OF_BIRTH, PHONE})
SHOWN_DIGITS = 3
_ISO_DATE = re.compile(r"\b(\d{4})-\d{2}-\d{2}\b")
_LONG_NUMBER = re.compile(r"\+?\d{8,}")


def mask_national_id(value: str | None) -> str | None:
    """`012345678123` → `*********123` (enough to tell two members apart, not to use it)."""
    if not value:
        return value
    return "*" * max(len(value) - SHOWN_DIGITS, 0) + value[-SHOWN_DIGITS:]


def birth_year(value: date | str | None) -> int | None:
    """The year of a birth date (a `date` or an ISO string), or None."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.year
    text = str(value)
    return int(text[:4]) if text[:4].isdigit() else None


def leaf(field: str) -> str:
    """The last part of a dotted field path (`members.<id>.national_id` → `national_id`)."""
    return field.rsplit(".", 1)[-1]


def redact_value(key: str, value: Any) -> Any:
    """A personal field's value as a reader sees it (other fields unchanged)."""
    if key == NATIONAL_ID:
        return mask_national_id(value) if isinstance(value, str) else None
    if key == DATE_OF_BIRTH:
        return birth_year(value) if isinstance(value, date | str) else None
    if key == PHONE:
        return None
    return value


def redact(value: Any) -> Any:
    """A JSON document with every personal field redacted, at any depth; a field-level change
    (`{"field": "members.<id>.phone", "before": …, "after": …}`) by its field's last part."""
    if isinstance(value, Mapping):
        field = value.get("field")
        if isinstance(field, str) and leaf(field) in PERSONAL_KEYS:
            key = leaf(field)
            return {k: redact_value(key, v) if k in ("before", "after") else redact(v)
                    for k, v in value.items()}
        return {k: redact_value(k, v) if k in PERSONAL_KEYS else redact(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def redact_text(text: str | None) -> str | None:
    """Free text (an error message) with dates cut to the year and long numbers masked."""
    if not text:
        return text
    text = _ISO_DATE.sub(r"\1-**-**", text)
    return _LONG_NUMBER.sub(lambda m: mask_national_id(m.group(0)) or "", text)


def redact_json_text(text: str, *, full: bool) -> str:
    """A raw payload (a dead letter's) as the caller may see it: unchanged when `full`, else
    redacted as JSON, or as free text when it is not JSON."""
    if full:
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return redact_text(text) or ""
    return json.dumps(redact(document), ensure_ascii=False)
