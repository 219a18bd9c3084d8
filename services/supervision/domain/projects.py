"""Community supervision: the commune's answer to a finding or recommendation is due in 15 days."""

from __future__ import annotations

from datetime import datetime, timedelta

PROJECT_TYPES = ("road", "cultural_house", "irrigation", "school", "clean_water", "health_station",
                 "market", "bridge", "other")
CHECKLIST = ("progress", "quality", "materials", "environment", "land", "disclosure")
SEVERITIES = ("low", "medium", "high", "critical")
BOARD_KINDS = ("investment_supervision", "peoples_inspection")
MIN_BOARD_MEMBERS = 5


def answer_due(raised_at: datetime, *, days: int = 15) -> datetime:
    """When the commune must answer (Law 10/2022/QH15: 15 days)."""
    return raised_at + timedelta(days=days)


def answer_state(*, due_at: datetime, answered_at: datetime | None, now: datetime) -> str:
    """`answered_in_time`, `answered_late`, `awaiting` (not yet due) or `overdue`."""
    if answered_at is not None:
        return "answered_in_time" if answered_at <= due_at else "answered_late"
    return "overdue" if now > due_at else "awaiting"
