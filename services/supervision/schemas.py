"""Supervision API models (requests are strict: unknown fields are refused)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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
