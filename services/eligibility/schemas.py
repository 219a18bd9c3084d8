"""Eligibility API request models (responses are documented plain JSON)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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

