"""Registry API models (requests: XCreate/XUpdate; responses: XRead)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AreaType = Literal["rural", "urban"]
Relation = Literal["head", "spouse", "child", "parent", "grandchild", "sibling", "other"]
Sex = Literal["male", "female", "other"]
IndicatorCode = Literal[
    "employment", "dependants", "nutrition", "health_insurance", "adult_education",
    "school_attendance", "housing_quality", "housing_area", "water_source", "latrine", "telecom",
    "information_access", "digital_services", "waste_treatment",
]
NationalId = Annotated[str, Field(pattern=r"^\d{12}$",
                                  description="12-digit citizen ID (digits only)")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Annotated[str, Field(min_length=3, max_length=1000,
                              description="why (kept in the history)")]
ExternalRef = Annotated[str, Field(
    min_length=1, max_length=100, pattern=r"^[\w.:/-]+$",
    description="the caller's own id of the household (import idempotency key)")]
Phone = Annotated[str, Field(pattern=r"^\+?\d{8,15}$", description="digits, optional leading +")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LocationIn(_In):
    """Administrative location of a household (codes from GET /v1/admin-units)."""

    province_code: str = Field(pattern=r"^\d{2}$")
    commune_code: str = Field(pattern=r"^\d{5}$")
    village: str = Field(min_length=1, max_length=200)


class MemberCreate(_In):
    """A member in a registration request."""

    full_name: Name
    national_id: NationalId
    date_of_birth: date
    sex: Sex
    relation: Relation
    ethnicity: str | None = Field(default=None, max_length=100)
    disability: bool | None = None


class HouseholdCreate(_In):
    """`POST /v1/households` body (exactly one member with relation `head`)."""

    external_ref: ExternalRef | None = None
    area_type: AreaType | None = Field(
        default=None, description="rural or urban; defaults to the commune's area type")
    location: LocationIn
    address: str | None = Field(default=None, max_length=500)
    phone: Phone | None = None
    members: list[MemberCreate] = Field(min_length=1, max_length=60)


class HouseholdUpdate(_In):
    """`PATCH /v1/households/{id}` body: the fields to change and a required reason."""

    area_type: AreaType | None = None
    location: LocationIn | None = None
    address: str | None = Field(default=None, max_length=500)
    phone: Phone | None = None
    reason: Reason


class MemberAdd(MemberCreate):
    """`POST /v1/households/{id}/members` body."""

    reason: Reason


class MemberUpdate(_In):
    """`PATCH /v1/households/{id}/members/{member_id}` body."""

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    national_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    date_of_birth: date | None = None
    sex: Sex | None = None
    relation: Relation | None = None
    ethnicity: str | None = Field(default=None, max_length=100)
    disability: bool | None = None
    previous_head_relation: Relation | None = Field(
        default=None, description="when making this member the head: the relation the current "
                                  "head takes instead (both change in one version)")
    reason: Reason


class Facts(BaseModel):
    """Measured facts of a survey (known ones typed; others kept as given)."""

    model_config = ConfigDict(extra="allow")

    housing_area_m2: float | None = Field(default=None, ge=0, le=10_000)
    household_size: int | None = Field(default=None, ge=1, le=60)
    dependants: int | None = Field(default=None, ge=0, le=60)


class SurveyCreate(_In):
    """`POST /v1/households/{id}/surveys` body (surveys are immutable once recorded)."""

    survey_date: date
    review_round: str = Field(min_length=1, max_length=40, examples=["2025"])
    income_per_capita_vnd: int = Field(ge=0, le=10_000_000_000,
                                       description="average income per person per month, VND")
    deprivations: dict[IndicatorCode, bool]
    facts: Facts | None = None
    surveyor: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=4000)
    visit_id: str | None = Field(default=None, description=(
        "the visit (POST …/visits) at which the survey was taken; it must be a visit of this "
        "household (not accepted in bulk imports)"))


class ImportLine(HouseholdCreate):
    """One household of a bulk import: the POST body, a required `external_ref`, inline survey."""

    external_ref: ExternalRef
    survey: SurveyCreate | None = None


class Archive(_In):
    """`POST /v1/households/{id}/archive` body."""

    reason: str = Field(min_length=3, max_length=1000,
                        examples=["moved", "dissolved", "deceased head"])


class _MemberFields(BaseModel):
    member_id: str
    full_name: str
    sex: str
    relation: str
    ethnicity: str | None = None
    disability: bool | None = None


class MemberRead(_MemberFields):
    """A member as officers (the registry's writers) see it: every field."""

    national_id: str
    date_of_birth: date


class MemberReadMasked(_MemberFields):
    """A member as readers (commune chair, supervisor, auditor) see it: the national ID masked,
    the birth year instead of the birth date."""

    national_id: str = Field(description="masked: only the last 3 digits shown",
                             examples=["*********123"])
    birth_year: int


class SurveyRead(BaseModel):
    """A recorded survey."""

    survey_id: str
    household_id: str
    survey_date: date
    review_round: str
    income_per_capita_vnd: int
    deprivations: dict[str, bool]
    facts: dict[str, Any] = {}
    surveyor: str | None = None
    notes: str | None = None
    recorded_by: str | None = None
    recorded_at: datetime | None = None
    is_current: bool = False
    visit_id: str | None = None
    event_id: str | None = Field(default=None, description="the event this request produced")


class VerificationRead(BaseModel):
    """A pending verification request (an upheld complaint about this household)."""

    complaint_id: str
    reason: str | None = None
    requested_at: str | None = None


class _HouseholdFields(BaseModel):
    household_id: str
    version: int
    status: str
    external_ref: str | None = None
    area_type: str
    location: LocationIn
    address: str | None = None
    head_name: str
    verification_requested: bool = False
    verification_requests: list[VerificationRead] = []
    possible_duplicates: list[str] = Field(
        default=[], description="households with a member of the same name and birth date in "
                                "the same commune (flagged for review, not blocked)")
    archive_reason: str | None = None
    current_survey: SurveyRead | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    event_id: str | None = Field(default=None, description="the event this request produced")


class HouseholdRead(_HouseholdFields):
    """A household as officers (the registry's writers) see it: every field."""

    access: Literal["full"] = Field(default="full", description="which view this is")
    phone: str | None = None
    members: list[MemberRead]


class HouseholdReadMasked(_HouseholdFields):
    """A household as readers (commune chair, supervisor, auditor) see it: no phone, members'
    national IDs masked and birth years only."""

    access: Literal["masked"] = Field(default="masked", description="which view this is")
    members: list[MemberReadMasked]


HouseholdView = Annotated[HouseholdRead | HouseholdReadMasked, Field(discriminator="access")]


class HouseholdPage(BaseModel):
    """One page of a listing; pass `next_cursor` as `cursor` for the next one (each item in the
    caller's view: `full` for officers, `masked` for readers)."""

    items: list[HouseholdView]
    next_cursor: str | None = None


class FieldChangeRead(BaseModel):
    """Field-level before/after."""

    field: str
    before: Any = None
    after: Any = None
    redacted: bool = Field(default=False, description=(
        "a personal field shown to a reader: a national ID masked, a birth date as its year, "
        "a phone as null"))


class HistoryEntry(BaseModel):
    """One version of a household."""

    version: int
    event_id: str
    event_type: str
    actor: str | None
    reason: str | None
    at: datetime
    changes: list[FieldChangeRead]


class AdminUnitRead(BaseModel):
    """A province or commune."""

    code: str
    level: str
    name: str
    parent_code: str | None = None
    area_type: str | None = None


class AdminUnitsLoaded(BaseModel):
    """Result of loading an admin-units CSV."""

    provinces: int
    communes: int
    inserted: int
    updated: int


class ImportJobRead(BaseModel):
    """A bulk import and its progress."""

    import_id: str
    kind: Literal["households", "visits"] = Field(
        default="households", description="what each line is: a household or a visit")
    status: Literal["running", "done", "failed"]
    format: str
    filename: str | None = None
    total: int
    accepted: int
    skipped: int = Field(description="unchanged lines of an earlier import (idempotent re-upload)")
    rejected: int
    bytes: int
    message: str | None = Field(default=None, description=(
        "why a job failed; for readers with dates cut to the year and long numbers masked"))
    created_by: str
    created_at: datetime
    finished_at: datetime | None = None
    errors_url: str


ShockType = Literal["flood", "storm", "drought", "landslide", "saltwater_intrusion", "epidemic",
                    "other"]
ShockSeverity = Literal["minor", "moderate", "severe", "extreme"]


class ShockAreaIn(_In):
    """A commune the shock hit, optionally only some of its villages."""

    commune_code: str = Field(pattern=r"^\d{5}$")
    villages: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=[], max_length=200, description="empty: the whole commune")


class ShockCreate(_In):
    """`POST /v1/shocks` body."""

    type: ShockType
    occurred_on: date = Field(description="the day the disaster struck (not in the future)")
    severity: ShockSeverity
    title: str = Field(min_length=3, max_length=200, examples=["Lũ quét tháng 10"])
    description: str | None = Field(default=None, max_length=4000)
    areas: list[ShockAreaIn] = Field(min_length=1, max_length=500,
                                     description="the affected communes (at least one)")
    review_due_on: date | None = Field(default=None, description=(
        "when the affected households must have been re-surveyed (default: "
        "REGISTRY_SHOCK_REVIEW_DAYS after today)"))


class ShockAreaRead(BaseModel):
    """An affected commune (with its province) and villages."""

    province_code: str
    commune_code: str
    villages: list[str] = []


class ShockRead(BaseModel):
    """A declared shock."""

    shock_id: str
    type: ShockType
    occurred_on: date
    severity: ShockSeverity
    title: str
    description: str | None = None
    areas: list[ShockAreaRead]
    review_due_on: date
    declared_by: str
    declared_at: datetime
    event_id: str
# --- cadres, assignments, visits, coverage -------------------------------------------------

Organisation = Literal["party_cell", "womens_union", "farmers_association",
                       "veterans_association", "youth_union", "commune_staff"]
Outcome = Literal["surveyed", "not_home", "refused", "moved", "deceased", "follow_up"]
Village = Annotated[str, Field(min_length=1, max_length=200)]
ReviewRound = Annotated[str, Field(min_length=1, max_length=40, examples=["2025"])]


class CadreCreate(_In):
    """`POST /v1/cadres` body: a cadre of one commune."""

    commune_code: str = Field(pattern=r"^\d{5}$")
    name: Name
    organisation: Organisation
    young_cadre: bool = Field(default=False, description="a young cadre sent to the grassroots")
    phone: Phone | None = Field(default=None, description="private: only officers see it")


class _CadreFields(BaseModel):
    cadre_id: str
    province_code: str
    commune_code: str
    name: str
    organisation: Organisation
    young_cadre: bool
    created_at: datetime | None = None


class CadreRead(_CadreFields):
    """A cadre as officers (the registry's writers) see it: with the phone."""

    access: Literal["full"] = Field(default="full", description="which view this is")
    phone: str | None = None


class CadreReadMasked(_CadreFields):
    """A cadre as readers (commune chair, supervisor, auditor) see it: no phone."""

    access: Literal["masked"] = Field(default="masked", description="which view this is")


CadreView = Annotated[CadreRead | CadreReadMasked, Field(discriminator="access")]


class AssignmentCreate(_In):
    """`POST /v1/assignments` body: a cadre in charge of villages of its commune, from a date
    (to a date, or open-ended)."""

    cadre_id: str = Field(min_length=1, max_length=64)
    commune_code: str = Field(pattern=r"^\d{5}$")
    villages: list[Village] = Field(min_length=1, max_length=100)
    valid_from: date
    valid_to: date | None = Field(default=None, description="inclusive; none: until ended")


class AssignmentEnd(_In):
    """`POST /v1/assignments/{id}/end` body: the last day (kept; the assignment is never
    deleted)."""

    valid_to: date
    reason: Reason


class AssignmentRead(BaseModel):
    """An assignment, current or past."""

    assignment_id: str
    cadre_id: str
    province_code: str
    commune_code: str
    villages: list[str]
    valid_from: date
    valid_to: date | None = None
    end_reason: str | None = None
    created_by: str | None = None
    ended_by: str | None = None
    created_at: datetime | None = None
    ended_at: datetime | None = None


class VisitCreate(_In):
    """`POST /v1/households/{id}/visits` body."""

    cadre_id: str = Field(min_length=1, max_length=64)
    visited_on: date = Field(description="not in the future")
    outcome: Outcome
    note: str | None = Field(default=None, max_length=4000)
    next_visit_due: date | None = Field(default=None, description=(
        "when to come back (after visited_on); required for follow_up"))
    review_round: ReviewRound | None = Field(default=None, description=(
        "the review round the visit belongs to (coverage counts visits by round)"))


class VisitImportLine(VisitCreate):
    """One visit of a bulk import (`POST /v1/imports?kind=visits`): the `POST …/visits` body,
    the household by `household_id` or by its `household_external_ref` (exactly one), and a
    required `external_ref` of the visit line (the idempotency key)."""

    external_ref: str = Field(min_length=1, max_length=100, pattern=r"^[\w.:/-]+$",
                              description="the caller's own id of the visit (import "
                                          "idempotency key)")
    household_id: str | None = Field(default=None, min_length=1, max_length=64)
    household_external_ref: str | None = Field(default=None, min_length=1, max_length=100,
                                               description="the household's external_ref")


class VisitRead(BaseModel):
    """A recorded visit (immutable)."""

    visit_id: str
    household_id: str
    cadre_id: str
    cadre_name: str
    organisation: Organisation
    village: str
    visited_on: date
    outcome: Outcome
    note: str | None = None
    next_visit_due: date | None = None
    review_round: str | None = None
    recorded_by: str | None = None
    recorded_at: datetime | None = None
    event_id: str | None = Field(default=None, description="the event this request produced")


class VillageCoverage(BaseModel):
    """One village's door-to-door progress in a review round."""

    village: str
    households: int = Field(description="active households")
    visited: int = Field(description="households with at least one visit this round")
    surveyed: int = Field(description="households with a `surveyed` visit or a survey this round")
    not_reached: int = Field(description=(
        "households whose visits this round are all not_home/refused, at least N of them"))
    overdue_follow_ups: int = Field(description=(
        "households whose latest visit this round is a follow_up due before today"))


class CadreCoverage(BaseModel):
    """One cadre's visits in the round."""

    cadre_id: str
    name: str
    organisation: Organisation
    visits: int
    households: int
    surveyed: int
    follow_ups: int


class UnvisitedHousehold(BaseModel):
    """An active household nobody has visited this round."""

    household_id: str
    village: str
    head_name: str


class Coverage(BaseModel):
    """A commune's door-to-door coverage in a review round; `unvisited` is paged (pass
    `next_cursor` as `cursor`)."""

    commune_code: str
    review_round: str
    not_reached_attempts: int = Field(description="N: attempts after which a household counts "
                                                   "as not reached (REGISTRY_COVERAGE_ATTEMPTS)")
    as_of: date
    villages: list[VillageCoverage]
    cadres: list[CadreCoverage]
    unvisited: list[UnvisitedHousehold]
    next_cursor: str | None = None
