"""Supervision API models (requests are strict: unknown fields are refused)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.openapi import IsoDate, IsoDateTime, Open

CommuneCode = Field(pattern=r"^\d{5}$", description="5-digit commune code (post-2025 units)")
ComplaintCategory = Literal["wrongly_included", "wrongly_excluded", "wrong_category",
                            "payment_not_received", "misconduct", "other"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- postings ---------------------------------------------------------------------------------

class PostingCreate(_In):
    """Post the commune's provisional classifications of one review round."""

    commune_code: str = CommuneCode
    review_round: str = Field(min_length=1, max_length=50, examples=["2026-periodic"])
    closes_at: AwareDatetime | None = Field(
        default=None, description="Overrides the default window (3 working days); no earlier "
                                  "than the minimum (SUPERVISION_POSTING_MIN_WORKING_DAYS, 3)")


class PostingApprove(_In):
    """Approve a closed posting; unresolved complaints must be carried over explicitly."""

    carry_over: list[str] = Field(default=[], max_length=1000,
                                  description="ids of unresolved complaints carried to the next "
                                              "review")


# --- complaints -------------------------------------------------------------------------------

class ComplaintCreate(_In):
    """A complaint taken in by an officer (hotline, in person) or the inspection board."""

    commune_code: str = CommuneCode
    channel: Literal["officer", "inspection_board"]
    category: ComplaintCategory
    text: str = Field(min_length=1, max_length=100_000,
                      description="at most SUPERVISION_COMPLAINT_TEXT_MAX (2,000) characters")
    posting_id: str | None = Field(default=None, max_length=64)
    household_id: str | None = Field(default=None, max_length=64)
    contact: str | None = Field(default=None, max_length=200)


class ComplaintAssign(_In):
    """Who investigates."""

    assignee: str = Field(min_length=1, max_length=200)


class ComplaintResolve(_In):
    """The answer after investigation: upheld or not upheld, with a note."""

    outcome: Literal["upheld", "not_upheld"]
    note: str = Field(min_length=3, max_length=2000)
    household_id: str | None = Field(
        default=None, max_length=64,
        description="the household found (e.g. for a household that was not on the list)")


class ComplaintReject(_In):
    """Why the complaint cannot be taken up (duplicate, out of scope, abusive)."""

    note: str = Field(min_length=3, max_length=2000)


class PostingClose(_In):
    """Close a posting: before its window ends only a national admin may, with the reason."""

    reason: str | None = Field(default=None, min_length=10, max_length=2000,
                               description="required to close before `closes_at` (recorded)")


class ComplaintClose(_In):
    """Close a resolved or rejected complaint."""

    note: str | None = Field(default=None, max_length=2000)


# --- community supervision --------------------------------------------------------------------

class ProjectCreate(_In):
    """A local project under community supervision."""

    commune_code: str = CommuneCode
    name: str = Field(min_length=1, max_length=300)
    type: Literal["road", "cultural_house", "irrigation", "school", "clean_water",
                  "health_station", "market", "bridge", "other"]
    budget_vnd: int = Field(gt=0, le=10**15, description="VND, at most 10^15")
    investor: str = Field(min_length=1, max_length=300)
    contractor: str | None = Field(default=None, max_length=300)
    planned_start: date
    planned_end: date


class BoardMember(_In):
    """A board member, elected by a village."""

    name: str = Field(min_length=1, max_length=200)
    village: str | None = Field(default=None, max_length=200)
    role: Literal["head", "deputy", "member"] = "member"


class BoardCreate(_In):
    """A supervision board: per project, or the commune's People's Inspection Board."""

    commune_code: str = CommuneCode
    kind: Literal["investment_supervision", "peoples_inspection"]
    name: str = Field(min_length=1, max_length=300)
    project_id: str | None = Field(default=None, max_length=64)
    members: list[BoardMember] = Field(min_length=5, max_length=50,
                                       description="at least 5 members (POLICY §6)")


class CheckItem(_In):
    """One checklist point: satisfactory or not, and what was seen."""

    ok: bool
    note: str | None = Field(default=None, max_length=2000)


class FindingIn(_In):
    """A finding, with how serious it is and what the board recommends."""

    severity: Literal["low", "medium", "high", "critical"]
    description: str = Field(min_length=3, max_length=4000)
    recommendation: str = Field(min_length=3, max_length=4000)


class Checklist(_In):
    """The points every inspection covers."""

    progress: CheckItem
    quality: CheckItem
    materials: CheckItem
    environment: CheckItem
    land: CheckItem
    disclosure: CheckItem


class InspectionCreate(_In):
    """An inspection of a project by its board."""

    board_id: str = Field(min_length=1, max_length=64)
    inspected_on: date
    members_present: list[str] = Field(min_length=1, max_length=50)
    checklist: Checklist
    notes: str | None = Field(default=None, max_length=4000)
    findings: list[FindingIn] = Field(default=[], max_length=50)


class RecommendationCreate(FindingIn):
    """A People's Inspection Board recommendation on the programme itself."""


class FindingAnswer(_In):
    """The commune's answer to a finding or recommendation."""

    answer: str = Field(min_length=3, max_length=4000)


# --- timeline ---------------------------------------------------------------------------------

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
    data: dict[str, Any] = Field(default={}, description="the event's payload, without personal "
                                                          "identifiers")
    children: list[TimelineEvent] = []


class Timeline(BaseModel):
    """A household's whole story."""

    household_id: str
    events: list[TimelineEvent]


# --- responses (they pass through members added later: `Open`) ------------------------------

class PostingItemRead(Open):
    """A household on a posting (no personal identifiers)."""

    household_id: str
    reference: str
    classification_id: str
    village: str
    head_name: str
    category: str
    previous_category: str | None = None
    indicators: Any
    deprivation_count: int
    threshold: int | None = None


class PostingSummary(Open):
    """A public posting in a listing."""

    posting_id: str
    commune_code: str
    province_code: str | None = None
    review_round: str
    status: str
    opens_at: IsoDateTime
    closes_at: IsoDateTime
    closed_at: IsoDateTime | None = None
    approved_at: IsoDateTime | None = None
    created_by: str | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    approved_by: str | None = None
    approved: Any = None
    created_at: IsoDateTime


class PostingRead(PostingSummary):
    """A posting, whether it takes complaints, its items and complaint counts per status."""

    accepting_complaints: bool
    items: list[PostingItemRead] | None = Field(
        default=None, description="left out by close and approve")
    complaints: dict[str, int] = Field(description="complaints filed against it, per status")
    public_url: str | None = Field(default=None, description="only when created")


class ComplaintFiled(Open):
    """A complaint taken in (never its contact, never its text)."""

    complaint_id: str
    status: str
    due_at: IsoDateTime
    received_at: IsoDateTime


class ComplaintSummary(Open):
    """A complaint in a listing (never the filer's contact)."""

    complaint_id: str
    commune_code: str
    province_code: str | None = None
    posting_id: str | None = None
    household_id: str | None = None
    not_on_list: bool
    category: str
    channel: str
    text: str
    status: str
    assignee: str | None = None
    received_at: IsoDateTime
    due_at: IsoDateTime
    resolved_at: IsoDateTime | None = None
    closed_at: IsoDateTime | None = None
    outcome: str | None = None
    resolution_note: str | None = None
    action: str | None = None
    hold_active: bool
    carried_over: bool
    created_by: str | None = None
    overdue: bool
    has_contact: bool | None = None


class ComplaintStep(Open):
    """One status of a complaint: who, when, and the note."""

    status: str
    actor: str | None = None
    note: str | None = None
    at: IsoDateTime


class ComplaintRead(ComplaintSummary):
    """A complaint with its history; the filer's contact only for those who handle it."""

    history: list[ComplaintStep]
    has_contact: bool | None = None
    contact: str | None = None


class ProjectSummary(Open):
    """A local project in a listing."""

    project_id: str
    commune_code: str
    province_code: str | None = None
    name: str
    type: str
    budget_vnd: int
    investor: str
    contractor: str | None = None
    planned_start: IsoDate
    planned_end: IsoDate
    status: str
    created_by: str | None = None
    created_at: IsoDateTime


class FindingRead(Open):
    """A finding or recommendation and its answer state."""

    finding_id: str
    commune_code: str
    province_code: str | None = None
    board_id: str
    project_id: str | None = None
    inspection_id: str | None = None
    kind: str
    severity: str
    description: str
    recommendation: str
    raised_at: IsoDateTime
    answer_due_at: IsoDateTime
    answered_at: IsoDateTime | None = None
    answer: str | None = None
    answered_by: str | None = None
    answer_state: str = Field(examples=["answered_in_time", "answered_late", "awaiting",
                                        "overdue"])
    breached: bool


class ProjectRead(ProjectSummary):
    """A project with its boards, inspections and findings."""

    boards: list[dict[str, Any]]
    inspections: list[dict[str, Any]]
    findings: list[FindingRead]


class BoardRead(Open):
    """A supervision board as set up."""

    board_id: str
    commune_code: str
    kind: str
    name: str
    project_id: str | None = None
    members: list[dict[str, Any]]


class InspectionRecorded(Open):
    """An inspection and the findings it raised."""

    inspection_id: str
    finding_ids: list[str]


class RecommendationRecorded(Open):
    """A board's recommendation, kept as a finding."""

    finding_id: str


class FindingAnswered(Open):
    """The answer to a finding, and whether it came in time."""

    finding_id: str
    answered_at: IsoDateTime
    answer_state: str
