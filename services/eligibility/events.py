"""Integration events eligibility publishes on `eligibility.decisions` (its public contract)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

TOPIC = "eligibility.decisions"
SOURCE = "/services/eligibility"

CLASSIFICATION_DECIDED = "eligibility.classification.decided.v1"
CLASSIFICATION_RECOGNIZED = "eligibility.classification.recognized.v1"
PROGRAM_ELIGIBILITY_CHANGED = "eligibility.program_eligibility.changed.v1"
REVIEW_OPENED = "eligibility.review.opened.v1"
REVIEW_CLOSED = "eligibility.review.closed.v1"

Category = Literal["poor", "near_poor", "middle", "not_poor", "incomplete"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")


class Indicator(_Event):
    """A deprivation indicator, named as the decree names it."""

    code: str
    name_vi: str
    name_en: str


class ExplanationV1(_Event):
    """Why a household got its category."""

    ruleset_id: str
    area_type: str
    income_per_capita_vnd: int
    income_line_vnd: int
    deprived: list[Indicator] = []
    deprivation_count: int
    threshold: int
    missing: list[str] = []
    # Optional additions (v1): the middle band, codes the rule set does not use, where the inputs
    # came from, the legal basis and one sentence an official can check against the decree.
    middle_line_vnd: int | None = None
    ignored: list[str] = []
    survey_id: str | None = None
    survey_event_id: str | None = None
    trigger_event_id: str | None = None
    reevaluation_job_id: str | None = None
    ruleset_digest: str | None = None
    legal_basis: list[str] = []
    text: str | None = None


class ClassificationDecidedV1(_Event):
    """`eligibility.classification.decided.v1`: a (provisional) classification, with why."""

    classification_id: str
    household_id: str
    category: Category
    previous_category: Category | None = None
    status: Literal["provisional", "recognized", "superseded"] = "provisional"
    ruleset_id: str
    survey_id: str | None = None
    survey_date: date | None = None
    review_round: str | None = None
    area_type: str
    province_code: str
    commune_code: str
    village: str
    head_name: str
    explanation: ExplanationV1
    trigger_event_id: str | None = None
    decided_at: datetime
    reevaluation_job_id: str | None = None


class ClassificationRecognizedV1(_Event):
    """`eligibility.classification.recognized.v1`: the commune approved the posting with it."""

    classification_id: str
    household_id: str
    category: Category
    posting_id: str
    recognized_at: datetime
    transition: Literal["escaped_poverty", "escaped_near_poverty"] | None = None
    just_escaped_until: date | None = None
    commune_code: str | None = None
    previous_category: Category | None = None
    province_code: str | None = None
    village: str | None = None
    head_name: str | None = None
    escaped_poverty_on: date | None = None


class ProgramStatus(_Event):
    """Eligibility for one programme, with the reason when not eligible."""

    program_code: str
    eligible: bool
    reason: str
    name: str | None = None


class ProgramEligibilityChangedV1(_Event):
    """`eligibility.program_eligibility.changed.v1`: the full list for the household."""

    household_id: str
    programs: list[ProgramStatus]
    changed: list[str] = []
    category: Category | None = None
    status: str | None = None
    commune_code: str | None = None
    village: str | None = None
    head_name: str | None = None
    as_of: datetime
    province_code: str | None = None
    classification_id: str | None = None
    just_escaped_until: date | None = None


class ReviewOpenedV1(_Event):
    """`eligibility.review.opened.v1`: the household is listed for an ad-hoc (regular) review
    because a shock hit its area; it is to be re-surveyed by `due_on`. Its classification and
    programmes stay as they are until a re-survey is decided and recognized."""

    review_id: str
    household_id: str
    reason: Literal["shock"] = "shock"
    shock_id: str
    shock_type: str
    shock_title: str
    occurred_on: date
    due_on: date
    province_code: str | None = None
    commune_code: str | None = None
    village: str | None = None
    head_name: str | None = None
    opened_at: datetime


class ReviewClosedV1(_Event):
    """`eligibility.review.closed.v1`: a survey on or after the shock's day arrived; it is
    decided as every survey is (the decision event follows with the same cause)."""

    review_id: str
    household_id: str
    shock_id: str
    survey_id: str | None = None
    survey_date: date
    survey_event_id: str
    closed_at: datetime
    overdue: bool = False


EVENTS: dict[str, type[BaseModel]] = {
    CLASSIFICATION_DECIDED: ClassificationDecidedV1,
    CLASSIFICATION_RECOGNIZED: ClassificationRecognizedV1,
    PROGRAM_ELIGIBILITY_CHANGED: ProgramEligibilityChangedV1,
    REVIEW_OPENED: ReviewOpenedV1,
    REVIEW_CLOSED: ReviewClosedV1,
}
