"""Disaster shock routes: declare (province and national officers), list, read."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Query, Response

from services.registry import schemas
from services.registry.api.common import reader
from services.registry.config import Settings
from services.registry.handlers import shocks
from shared.auth import CurrentUser, require_role
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1/shocks", tags=["shocks"])


@router.post("", status_code=201, response_model=schemas.ShockRead,
             dependencies=[require_role("national_admin", "province_officer")])
async def declare_shock(body: schemas.ShockCreate, rt: RuntimeDep, user: CurrentUser,
                        response: Response) -> schemas.ShockRead:
    """Declare a disaster shock over communes (optionally some villages); publishes
    `registry.shock.declared.v1`, on which eligibility opens an ad-hoc review of every household
    there, due by `review_due_on`. 422 names every bad field (unknown commune, a date in the
    future); 403 when a commune is outside a province officer's province. Nothing is stored
    on refusal."""
    settings = cast(Settings, rt.settings)
    async with rt.transaction() as session:
        read = await shocks.declare(session, rt.outbox, body=body, user=user,
                                    review_days=settings.shock_review_days)
    response.headers["Location"] = f"/v1/shocks/{read.shock_id}"
    return read


@router.get("", response_model=list[schemas.ShockRead], dependencies=[reader])
async def list_shocks(rt: RuntimeDep, user: CurrentUser,
                      commune_code: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
                      province_code: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100,
                      offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                      ) -> list[schemas.ShockRead]:
    """Shocks that hit the caller's scope, newest first."""
    async with rt.snapshot() as session:
        return await shocks.listing(session, user=user, commune_code=commune_code,
                                    province_code=province_code, limit=limit, offset=offset)


@router.get("/{shock_id}", response_model=schemas.ShockRead, dependencies=[reader])
async def get_shock(shock_id: str, rt: RuntimeDep, user: CurrentUser) -> schemas.ShockRead:
    """One shock (404 when unknown or outside your scope)."""
    async with rt.snapshot() as session:
        return await shocks.get(session, user=user, shock_id=shock_id)
