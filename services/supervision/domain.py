"""Pure supervision rules: timeline summaries. Standard library only."""

from __future__ import annotations

from typing import Any

SUMMARIES: dict[str, tuple[str, str]] = {
    "registry.household.registered.v1": ("Hộ {head_name} được đăng ký", "Household of {head_name} registered"),
}


def summarize(event_type: str, data: dict[str, Any]) -> tuple[str, str]:
    """A one-line human summary (vi, en) of an event for the beneficiary timeline."""
    vi, en = SUMMARIES.get(event_type, (event_type, event_type))
    fields = {**data, **(data.get("household") or {})}
    try:
        return vi.format(**fields), en.format(**fields)
    except (KeyError, IndexError, ValueError):
        return event_type, event_type
