"""Administrative-unit routes: list provinces/communes, load the official list (CSV)."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from services.registry import schemas
from services.registry.domain.admin_units import COLUMNS
from services.registry.handlers import admin_units
from shared.auth import CurrentUser, require_role
from shared.openapi import problem_responses
from shared.problems import Problem
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1/admin-units", tags=["admin units"])


@router.get("", response_model=list[schemas.AdminUnitRead])
async def list_units(rt: RuntimeDep, user: CurrentUser,
                     level: Literal["province", "commune"] | None = None,
                     parent: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
                     ) -> list[schemas.AdminUnitRead]:
    """Provinces, or the communes of a province (`?level=commune&parent=01`)."""
    async with rt.snapshot() as session:
        return await admin_units.list_units(session, level=level, parent=parent)


@router.post("", response_model=schemas.AdminUnitsLoaded,
             dependencies=[require_role("national_admin")],
             description=f"Upload a CSV (`text/csv`, UTF-8) with the columns "
                         f"`{','.join(COLUMNS)}`: provinces have a 2-digit code and no parent, "
                         "communes a 5-digit code, their province and a default area type "
                         "(rural/urban). Units are inserted or updated, never deleted (old codes "
                         "stay valid for historical records). All or nothing: 422 lists every "
                         "bad line. Same as `python -m services.registry.admin_units load FILE`.",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}}}}},
             responses=problem_responses(413))
async def load_units(request: Request, rt: RuntimeDep) -> schemas.AdminUnitsLoaded:
    """Load the official list of administrative units (national admins)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Problem(422, "body: not UTF-8", errors=[{"field": "body",
                                                      "message": str(exc)}]) from exc
    async with rt.transaction() as session:
        return await admin_units.load_csv(session, io.StringIO(text, newline=""))
