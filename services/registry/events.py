"""Integration events the registry publishes on `registry.households` (its public contract).

Every event carries `household`, the full snapshot after the change, so consumers can act without
calling the registry back. Within a version only optional fields may be added.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

TOPIC = "registry.households"
SOURCE = "/services/registry"

HOUSEHOLD_REGISTERED = "registry.household.registered.v1"
HOUSEHOLD_UPDATED = "registry.household.updated.v1"
MEMBER_ADDED = "registry.household.member_added.v1"
MEMBER_REMOVED = "registry.household.member_removed.v1"
MEMBER_UPDATED = "registry.household.member_updated.v1"
HOUSEHOLD_SURVEYED = "registry.household.surveyed.v1"
HOUSEHOLD_ARCHIVED = "registry.household.archived.v1"
VERIFICATION_REQUESTED = "registry.household.verification_requested.v1"
VERIFICATION_RESOLVED = "registry.household.verification_resolved.v1"
# Not about one household: no subject (no key); eligibility opens a review for each household
# of the affected area, and that review is what the households' timelines show.
SHOCK_DECLARED = "registry.shock.declared.v1"
SHOCK_TYPES = ("flood", "storm", "drought", "landslide", "saltwater_intrusion", "epidemic",
               "other")
SHOCK_SEVERITIES = ("minor", "moderate", "severe", "extreme")
HOUSEHOLD_VISITED = "registry.household.visited.v1"

INDICATOR_CODES = (
    "employment", "dependants", "nutrition", "health_insurance", "adult_education",
    "school_attendance", "housing_quality", "housing_area", "water_source", "latrine", "telecom",
    "information_access", "digital_services", "waste_treatment",
)


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")


class Location(_Event):
    """Where a household lives."""

    province_code: str
    commune_code: str
    village: str


class MemberV1(_Event):
    """A household member (internal topic: the national ID never leaves for banks or the public)."""

    member_id: str
    full_name: str
    national_id: str
    date_of_birth: date
    sex: str
    relation: str
    ethnicity: str | None = None
    disability: bool | None = None


class HouseholdSnapshotV1(_Event):
    """The household as it stands after the change."""

    household_id: str
    version: int
    status: Literal["active", "archived"] = "active"
    external_ref: str | None = None
    area_type: Literal["rural", "urban"]
    location: Location
    address: str | None = None
    head_name: str
    members: list[MemberV1] = []
    verification_requested: bool = False
    # Optional additions (v1 stays compatible):
    phone: str | None = None
    verification_complaint_ids: list[str] = []
    possible_duplicates: list[str] = []
    current_survey_id: str | None = None
    archive_reason: str | None = None


class SurveyV1(_Event):
    """One immutable survey."""

    survey_id: str
    survey_date: date
    review_round: str
    income_per_capita_vnd: int
    deprivations: dict[str, bool]
    facts: dict[str, Any] = {}
    surveyor: str | None = None
    notes: str | None = None
    recorded_by: str | None = None
    # Optional addition (v1 stays compatible): the visit at which it was taken.
    visit_id: str | None = None


class VisitV1(_Event):
    """One door-to-door visit by a cadre (the cadre's phone never travels)."""

    visit_id: str
    cadre_id: str
    cadre_name: str
    organisation: Literal["party_cell", "womens_union", "farmers_association",
                          "veterans_association", "youth_union", "commune_staff"]
    visited_on: date
    outcome: Literal["surveyed", "not_home", "refused", "moved", "deceased", "follow_up"]
    note: str | None = None
    next_visit_due: date | None = None
    review_round: str | None = None
    recorded_by: str | None = None


class FieldChange(_Event):
    """Field-level before/after."""

    field: str
    before: Any = None
    after: Any = None


class HouseholdRegisteredV1(_Event):
    """`registry.household.registered.v1`: a new household was recorded."""

    household_id: str
    version: int
    household: HouseholdSnapshotV1
    possible_duplicates: list[str] = []
    actor: str | None = None
    import_id: str | None = None


class HouseholdUpdatedV1(_Event):
    """`registry.household.updated.v1`: household fields changed (with the diff)."""

    household_id: str
    version: int
    changes: list[FieldChange]
    reason: str
    household: HouseholdSnapshotV1
    actor: str | None = None


class MemberChangedV1(_Event):
    """`member_added` / `member_removed` / `member_updated`."""

    household_id: str
    version: int
    member: MemberV1
    changes: list[FieldChange] = []
    reason: str | None = None
    household: HouseholdSnapshotV1
    actor: str | None = None


class HouseholdSurveyedV1(_Event):
    """`registry.household.surveyed.v1`: a survey was recorded (carries the full survey)."""

    household_id: str
    version: int
    survey: SurveyV1
    is_current: bool = True
    household: HouseholdSnapshotV1
    actor: str | None = None
    import_id: str | None = None


class HouseholdArchivedV1(_Event):
    """`registry.household.archived.v1`."""

    household_id: str
    version: int
    reason: str
    household: HouseholdSnapshotV1
    actor: str | None = None


class VerificationRequestedV1(_Event):
    """`registry.household.verification_requested.v1`: an upheld complaint flags the household."""

    household_id: str
    version: int
    complaint_id: str
    reason: str | None = None
    household: HouseholdSnapshotV1
    actor: str | None = None


class VerificationResolvedV1(_Event):
    """`registry.household.verification_resolved.v1`: a new survey resolved the flag."""

    household_id: str
    version: int
    complaint_id: str
    survey_id: str
    household: HouseholdSnapshotV1
    complaint_ids: list[str] = []
    actor: str | None = None


class ShockAreaV1(_Event):
    """A commune a shock hit; `villages` empty: the whole commune."""

    province_code: str
    commune_code: str
    villages: list[str] = []


class ShockDeclaredV1(_Event):
    """`registry.shock.declared.v1`: a province or national officer declared a disaster shock;
    the affected households are to be re-surveyed (ad-hoc review) by `review_due_on`."""

    shock_id: str
    type: Literal["flood", "storm", "drought", "landslide", "saltwater_intrusion", "epidemic",
                  "other"]
    occurred_on: date
    severity: Literal["minor", "moderate", "severe", "extreme"]
    title: str
    description: str | None = None
    areas: list[ShockAreaV1]
    review_due_on: date
    declared_at: str
    actor: str | None = None


class HouseholdVisitedV1(_Event):
    """`registry.household.visited.v1`: a cadre visited the household. A visit does not change
    the household: `version` is its current version, not a new one."""

    household_id: str
    version: int
    visit: VisitV1
    household: HouseholdSnapshotV1
    actor: str | None = None
    import_id: str | None = None  # the bulk import (kind=visits) that recorded the visit


EVENTS: dict[str, type[BaseModel]] = {
    HOUSEHOLD_REGISTERED: HouseholdRegisteredV1,
    HOUSEHOLD_UPDATED: HouseholdUpdatedV1,
    MEMBER_ADDED: MemberChangedV1,
    MEMBER_REMOVED: MemberChangedV1,
    MEMBER_UPDATED: MemberChangedV1,
    HOUSEHOLD_SURVEYED: HouseholdSurveyedV1,
    HOUSEHOLD_ARCHIVED: HouseholdArchivedV1,
    VERIFICATION_REQUESTED: VerificationRequestedV1,
    VERIFICATION_RESOLVED: VerificationResolvedV1,
    SHOCK_DECLARED: ShockDeclaredV1,
    HOUSEHOLD_VISITED: HouseholdVisitedV1,
}
