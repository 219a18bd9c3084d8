"""Supervision HTTP routes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from services.supervision import handlers, schemas
from shared.auth import CurrentUser
from shared.runtime import SessionDep

router = APIRouter(prefix="/v1", tags=["timeline"])


@router.get("/households/{household_id}/timeline", response_model=schemas.Timeline)
async def get_timeline(household_id: str, session: SessionDep, user: CurrentUser,
                       view: Literal["list", "tree"] = "list") -> schemas.Timeline:
    """Every event of one household, in causal order (`view=tree` nests each under its cause)."""
    return await handlers.timeline(session=session, household_id=household_id, actor=user,
                                   tree=view == "tree")
