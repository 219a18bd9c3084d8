"""Eligibility API request and response models."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.openapi import IsoDate, IsoDateTime, Open

Category = Literal["poor", "near_poor", "middle", "not_poor", "incomplete"]


class EvaluateRequest(BaseModel):
    """A what-if: classify these inputs under the rule set of `survey_date` (or `ruleset_id`)."""

    model_config = ConfigDict(extra="forbid")

    area_type: Literal["rural", "urban"]
    survey_date: date | None = None
    ruleset_id: str | None = None
    province_code: str | None = Field(default=None, pattern=r"^\d{2}$",
                                      description="picks a province's local rule set if any")
    income_per_capita_vnd: int = Field(ge=0, le=10_000_000_000)
    deprivations: dict[str, bool] = Field(default_factory=dict)



# --- responses (they pass through members added later: `Open`) ------------------------------

class RulesetSummary(Open):
    """A rule set in a listing."""

    id: str
    title: str
    title_vi: str
    legal_basis: list[str]
    effective_from: IsoDate
    effective_to: IsoDate
    scope: Literal["national", "province"]
    extends: str | None = None
    province_codes: list[str]
    income_lines_vnd: dict[str, int] = Field(description="the poverty line per area type")
    middle_lines_vnd: dict[str, int] | None = None
    deprivation_threshold: int
    indicator_codes: list[str]
    digest: str
    has_unconfirmed_values: bool


class RulesetDetail(RulesetSummary):
    """A rule set with its category bands, indicators and the values not yet confirmed."""

    income_measure: str
    category_bands: dict[str, list[dict[str, Any]]] = Field(
        description="per area type, each category's income and deprivation condition")
    dimensions: list[dict[str, Any]]
    indicators: list[dict[str, Any]]
    unconfirmed: list[dict[str, Any]]
    notes: str


class ReevaluationRead(Open):
    """A re-evaluation job and its progress."""

    job_id: str
    ruleset_id: str
    status: str = Field(examples=["running", "done", "failed"])
    total: int
    processed: int
    changed: int
    progress: float = Field(ge=0, le=1)
    ruleset_digest: str | None = None
    error: str | None = None
    requested_by: str | None = None
    created_at: IsoDateTime
    started_at: IsoDateTime | None = None
    finished_at: IsoDateTime | None = None
    updated_at: IsoDateTime


class ExplanationRead(Open):
    """Why inputs get their category: the numbers compared and the indicators counted."""

    income_line_vnd: int
    deprived: list[str] = Field(description="codes of the indicators deprived in")
    deprivation_count: int
    threshold: int
    missing: list[str]
    area_type: str
    income_per_capita_vnd: int
    middle_line_vnd: int | None = None
    deprived_indicators: list[dict[str, Any]]
    ignored: list[str]
    legal_basis: list[str]
    text: str


class EvaluationRead(Open):
    """The category made-up inputs would get, and why."""

    category: Category
    ruleset_id: str
    explanation: ExplanationRead


class ClassificationRead(Open):
    """A stored classification."""

    classification_id: str
    household_id: str
    category: Category
    previous_category: str | None = None
    status: Literal["provisional", "recognized", "superseded"]
    ruleset_id: str
    ruleset_digest: str | None = None
    survey_id: str | None = None
    survey_date: IsoDate | None = None
    review_round: str | None = None
    area_type: str
    province_code: str
    commune_code: str
    village: str
    head_name: str
    explanation: dict[str, Any]
    trigger_event_id: str | None = None
    reevaluation_job_id: str | None = None
    decided_at: IsoDateTime
    recognized_at: IsoDateTime | None = None
    posting_id: str | None = None
    superseded_at: IsoDateTime | None = None
    superseded_by: str | None = None


class RecognizedRead(Open):
    """The household's recognized standing."""

    classification_id: str | None = None
    category: str
    recognized_on: IsoDate | None = None
    ruleset_id: str | None = None


class TransitionRead(Open):
    """A recorded change of recognized standing."""

    household_id: str
    kind: str
    from_category: str
    to_category: str
    from_classification_id: str | None = None
    to_classification_id: str
    occurred_on: IsoDate
    just_escaped_until: IsoDate | None = None


class ReviewRead(Open):
    """An ad-hoc review a shock opened: the household is to be surveyed again by `due_on`."""

    review_id: str
    household_id: str
    reason: str
    shock_id: str
    shock_type: str
    shock_title: str
    occurred_on: IsoDate
    due_on: IsoDate
    province_code: str
    commune_code: str
    village: str | None = None
    status: Literal["open", "closed"]
    opened_at: IsoDateTime
    closed_at: IsoDateTime | None = None
    survey_id: str | None = None
    survey_date: IsoDate | None = None
    survey_event_id: str | None = None
    overdue: bool = Field(description="still open after its due date")


class CurrentClassificationRead(ClassificationRead):
    """The current classification with the household's recognized standing."""

    household_status: str
    recognized: RecognizedRead | None = None
    just_escaped: bool
    escaped_poverty_on: IsoDate | None = None
    just_escaped_until: IsoDate | None = None
    transitions: list[TransitionRead]
    under_review: list[ReviewRead] = Field(
        default_factory=list, description="open ad-hoc reviews: the category stands until a "
                                          "re-survey is decided and recognized")


class ProgramStatusRead(Open):
    """Eligibility for one programme, with the reason either way."""

    program_code: str
    name: str
    eligible: bool
    reason: str


class ProgramsRead(Open):
    """Each programme with eligible true/false and the reason, as of a day."""

    household_id: str
    as_of: IsoDate
    recognized_category: str | None = None
    recognized_classification_id: str | None = None
    current_category: str | None = None
    household_status: str
    just_escaped: bool
    just_escaped_until: IsoDate | None = None
    programs: list[ProgramStatusRead]
