"""Integration events the registry publishes on `registry.households` (its public contract)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

TOPIC = "registry.households"
SOURCE = "/services/registry"

HOUSEHOLD_REGISTERED = "registry.household.registered.v1"


class Location(BaseModel):
    """Where a household lives."""

    province_code: str
    commune_code: str
    village: str


class MemberV1(BaseModel):
    """A household member as published (the national ID stays inside the registry's events)."""

    member_id: str
    full_name: str
    national_id: str
    date_of_birth: date
    sex: str
    relation: str


class HouseholdRegisteredV1(BaseModel):
    """`registry.household.registered.v1`: a new household was recorded."""

    model_config = ConfigDict(extra="allow")

    household_id: str
    version: int
    area_type: str
    location: Location
    head_name: str
    members: list[MemberV1] = []
    actor: str | None = None


EVENTS: dict[str, type[BaseModel]] = {HOUSEHOLD_REGISTERED: HouseholdRegisteredV1}
