"""Eligibility HTTP routes."""

from __future__ import annotations

from fastapi import APIRouter

from services.eligibility import handlers, schemas
from shared.auth import CurrentUser
from shared.runtime import SessionDep

router = APIRouter(prefix="/v1", tags=["households"])


@router.get("/households/{household_id}", response_model=schemas.HouseholdRead)
async def get_household(household_id: str, session: SessionDep,
                        user: CurrentUser) -> schemas.HouseholdRead:
    """What eligibility knows of a household."""
    return await handlers.get_household(session=session, household_id=household_id, actor=user)
