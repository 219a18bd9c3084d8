"""Registry API models."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AreaType = Literal["rural", "urban"]
Relation = Literal["head", "spouse", "child", "parent", "grandchild", "sibling", "other"]


class LocationIn(BaseModel):
    """Administrative location of a household."""

    model_config = ConfigDict(extra="forbid")

    province_code: str = Field(pattern=r"^\d{2}$")
    commune_code: str = Field(pattern=r"^\d{5}$")
    village: str = Field(min_length=1, max_length=200)


class MemberCreate(BaseModel):
    """A member in a registration request."""

    model_config = ConfigDict(extra="forbid")

    full_name: str = Field(min_length=1, max_length=200)
    national_id: str = Field(pattern=r"^\d{12}$", description="12-digit citizen ID")
    date_of_birth: date
    sex: Literal["male", "female", "other"]
    relation: Relation


class HouseholdCreate(BaseModel):
    """`POST /v1/households` body."""

    model_config = ConfigDict(extra="forbid")

    area_type: AreaType
    location: LocationIn
    members: list[MemberCreate] = Field(min_length=1, max_length=60)


class MemberRead(BaseModel):
    """A member as the API returns it."""

    member_id: str
    full_name: str
    national_id: str
    date_of_birth: date
    sex: str
    relation: str


class HouseholdRead(BaseModel):
    """A household as the API returns it."""

    household_id: str
    version: int
    status: str
    area_type: str
    location: LocationIn
    members: list[MemberRead]
    event_id: str | None = None
