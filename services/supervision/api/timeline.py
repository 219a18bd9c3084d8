"""Timeline route."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from services.supervision import schemas
from services.supervision.api.common import read_role
from services.supervision.handlers import timeline as timeline_handlers
from shared.auth import CurrentUser
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["timeline"])


@router.get("/households/{household_id}/timeline", response_model=schemas.Timeline,
            dependencies=[read_role])
async def get_timeline(household_id: str, rt: RuntimeDep, user: CurrentUser,
                       view: Literal["list", "tree"] = "list") -> schemas.Timeline:
    """Every event of one household, in order (`view=tree` nests each under its cause)."""
    async with rt.snapshot() as session:
        return await timeline_handlers.timeline(session, household_id=household_id, user=user,
                                                tree=view == "tree")
