"""Ad-hoc review routes: the re-survey list a shock opened, per commune or household."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.eligibility import schemas
from services.eligibility.api import read_role
from services.eligibility.handlers import reviews, service_of
from shared.auth import CurrentUser
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["reviews"])


@router.get("/reviews", dependencies=[read_role], response_model=list[schemas.ReviewRead])
async def list_reviews(rt: RuntimeDep, user: CurrentUser,
                       commune_code: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
                       shock_id: Annotated[str | None, Query(max_length=64)] = None,
                       status: Annotated[str | None, Query(pattern=r"^(open|closed)$")] = None,
                       household_id: Annotated[str | None, Query(max_length=64)] = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                       ) -> list[dict[str, Any]]:
    """Ad-hoc reviews in your scope, soonest due first: `?commune_code=…&status=open` is the
    commune's re-survey list after a shock (`overdue`: open past its due date). A review is
    closed by the household's next survey on or after the shock's day."""
    async with rt.snapshot() as session:
        return await reviews.listing(session, user=user, commune_code=commune_code,
                                     shock_id=shock_id, status=status, household_id=household_id,
                                     today=service_of(rt).today(), limit=limit, offset=offset)


@router.get("/reviews/{review_id}", dependencies=[read_role], response_model=schemas.ReviewRead)
async def get_review(review_id: str, rt: RuntimeDep, user: CurrentUser) -> dict[str, Any]:
    """One review (404 when unknown or outside your scope)."""
    async with rt.snapshot() as session:
        return await reviews.get(session, user=user, review_id=review_id,
                                 today=service_of(rt).today())
