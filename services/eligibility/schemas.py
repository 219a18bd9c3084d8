"""Eligibility API models."""

from __future__ import annotations

from pydantic import BaseModel


class HouseholdRead(BaseModel):
    """What eligibility knows of a household."""

    household_id: str
    area_type: str
    province_code: str
    commune_code: str
    village: str
    registry_version: int
    last_event_id: str
