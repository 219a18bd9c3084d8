"""Disbursement API models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Organisation = Literal["womens_union", "farmers_association", "veterans_association", "youth_union"]
CommuneCode = Field(pattern=r"^\d{5}$", description="5-digit commune code (post-2025 units)")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GroupCreate(_In):
    """A savings-and-loan group in one village, entrusted to a mass organisation."""

    commune_code: str = CommuneCode
    village: str = Field(min_length=1, max_length=200)
    organisation: Organisation
    name: str = Field(min_length=1, max_length=200)
    leader_name: str | None = Field(default=None, max_length=200)


class MemberAdd(_In):
    """A household joining a group."""

    household_id: str = Field(min_length=1, max_length=64)


class GroupRead(BaseModel):
    """A group with its members."""

    group_id: str
    commune_code: str
    village: str
    organisation: str
    name: str
    leader_name: str | None
    member_count: int
    takes_applications: bool
    members: list[dict]
    created_at: datetime


class ApplicationCreate(_In):
    """Apply for a loan (through a group) or livelihood support."""

    household_id: str = Field(min_length=1, max_length=64)
    programme_code: str = Field(min_length=1, max_length=64)
    amount_vnd: int = Field(gt=0, le=10_000_000_000)
    term_months: int | None = Field(default=None, gt=0, le=600)
    purpose: str = Field(min_length=3, max_length=1000)
    group_id: str | None = Field(default=None, max_length=64)


class GroupReview(_In):
    """Outcome of the group's open meeting (board, entrusted organisation, village head)."""

    decision: Literal["approve", "reject"]
    note: str = Field(min_length=1, max_length=2000)


class Issue(_In):
    """Confirm (credit, commune chair) or approve (livelihood, commune officer): issue the instruction."""

    scheduled_date: date | None = Field(
        default=None, description="Disbursement day at the commune transaction point (default today)")
    note: str | None = Field(default=None, max_length=2000)


class Reject(_In):
    """Refuse an application, with the reason the household will be told."""

    reason: str = Field(min_length=3, max_length=2000)


class Reschedule(_In):
    """Move the disbursement day of an instruction not yet sent."""

    scheduled_date: date


class Cancel(_In):
    """Cancel an instruction not yet sent."""

    reason: str = Field(min_length=3, max_length=2000)


class BudgetSet(_In):
    """A commune's budget for one programme."""

    total_vnd: int = Field(ge=0, le=10_000_000_000_000)
    province_code: str | None = Field(default=None, pattern=r"^\d{2}$")


class RestructuringCreate(_In):
    """Ask to restructure a settled loan after a shock that hit the borrower's household."""

    option: Literal["extension", "interest_freeze"] = Field(
        description="extension: the term is extended by `months`; interest_freeze: no interest "
                    "on instalments due in the next `months` (maxima in restructuring.yaml)")
    months: int = Field(gt=0, le=600)
    shock_id: str = Field(min_length=1, max_length=64,
                          description="The declared shock (registry) the household was exposed to")
    reason: str = Field(min_length=3, max_length=2000,
                        description="The losses the household suffered")


class RestructuringConfirm(_In):
    """The commune chair's confirmation of a reviewed restructuring."""

    note: str | None = Field(default=None, max_length=2000)
