"""Registry HTTP routes: translate HTTP ↔ handlers."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from services.registry import handlers, schemas
from shared.auth import CurrentUser, require_role
from shared.problems import Problem
from shared.runtime import RuntimeDep, SessionDep

router = APIRouter(prefix="/v1", tags=["households"])
officer = require_role("national_admin", "province_officer", "commune_officer")


@router.post("/households", status_code=201, response_model=schemas.HouseholdRead,
             dependencies=[officer])
async def register_household(body: schemas.HouseholdCreate, rt: RuntimeDep, user: CurrentUser,
                             response: Response) -> schemas.HouseholdRead:
    """Register a household; publishes `registry.household.registered.v1`."""
    async with rt.transaction() as session:
        read = await handlers.register(session=session, outbox=rt.outbox, body=body, actor=user)
    response.headers["ETag"] = f'"{read.version}"'
    response.headers["Location"] = f"/v1/households/{read.household_id}"
    return read


@router.get("/households/{household_id}", response_model=schemas.HouseholdRead)
async def get_household(household_id: str, session: SessionDep, user: CurrentUser,
                        response: Response) -> schemas.HouseholdRead:
    """One household (404 when unknown or outside your scope)."""
    try:
        uuid.UUID(household_id)
    except ValueError as exc:
        raise Problem(404, f"no household {household_id}") from exc
    read = await handlers.get(session=session, household_id=household_id, actor=user)
    response.headers["ETag"] = f'"{read.version}"'
    return read
