"""Supervision API models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class TimelineEvent(BaseModel):
    """One entry of a beneficiary timeline."""

    event_id: str
    time: datetime
    type: str
    source: str
    summary: dict[str, str]
    actor: str | None
    correlation_id: str | None
    causation_id: str | None
    trace_id: str | None
    children: list[TimelineEvent] = []


class Timeline(BaseModel):
    """A household's whole story."""

    household_id: str
    events: list[TimelineEvent]
