"""Integration events eligibility publishes on `eligibility.decisions` (its public contract)."""

from __future__ import annotations

from pydantic import BaseModel

TOPIC = "eligibility.decisions"
SOURCE = "/services/eligibility"

EVENTS: dict[str, type[BaseModel]] = {}
