"""Integration events supervision publishes on `supervision.events` (its public contract)."""

from __future__ import annotations

from pydantic import BaseModel

TOPIC = "supervision.events"
SOURCE = "/services/supervision"

EVENTS: dict[str, type[BaseModel]] = {}
