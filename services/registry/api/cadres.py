"""Cadre routes: cadres of a commune and their assignments to villages (history kept)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.registry import schemas
from services.registry.api.common import reader, writer
from services.registry.handlers import cadres
from shared.auth import CurrentUser
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(tags=["cadres"])
CommuneQ = Annotated[str | None, Query(pattern=r"^\d{5}$")]


@router.post("/v1/cadres", status_code=201, response_model=schemas.CadreRead,
             dependencies=[writer])
async def create_cadre(body: schemas.CadreCreate, rt: RuntimeDep, user: CurrentUser,
                       response: Response) -> schemas.CadreRead:
    """Record a cadre (Party cell, Women's Union, Farmers' Association, Veterans' Association,
    Youth Union or commune staff) of a commune: 422 when the commune is unknown, 403 when it is
    outside your scope."""
    async with rt.transaction() as session:
        read = await cadres.create(session=session, body=body, user=user)
    response.headers["Location"] = f"/v1/cadres/{read.cadre_id}"
    return read


@router.get("/v1/cadres", response_model=list[schemas.CadreView], dependencies=[reader])
async def list_cadres(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                      ) -> list[schemas.CadreRead | schemas.CadreReadMasked]:
    """Cadres in your scope, by name. Officers get the `full` view; commune chairs, supervisors
    and auditors the `masked` one (no phone)."""
    async with rt.snapshot() as session:
        return await cadres.search(session=session, user=user, commune_code=commune_code)


@router.get("/v1/cadres/{cadre_id}", response_model=schemas.CadreView, dependencies=[reader])
async def get_cadre(cadre_id: str, rt: RuntimeDep, user: CurrentUser,
                    ) -> schemas.CadreRead | schemas.CadreReadMasked:
    """One cadre (404 when unknown or outside your scope); no phone for readers."""
    async with rt.snapshot() as session:
        return await cadres.get(session=session, cadre_id=cadre_id, user=user)


@router.post("/v1/assignments", status_code=201, response_model=schemas.AssignmentRead,
             dependencies=[writer], responses=problem_responses(
                 409, s409="the cadre is already assigned to one of these villages then"))
async def assign(body: schemas.AssignmentCreate, rt: RuntimeDep, user: CurrentUser,
                 response: Response) -> schemas.AssignmentRead:
    """Put a cadre in charge of villages of its commune from `valid_from` (to `valid_to`, or
    until ended). A commune outside your scope: 403; a cadre unknown, outside your scope or of
    another commune: 422 naming `cadre_id`; the same cadre already holding one of the villages
    on a shared day: 409 (several cadres may share a village). Nothing is stored on refusal."""
    async with rt.transaction() as session:
        read = await cadres.assign(session=session, body=body, user=user)
    response.headers["Location"] = f"/v1/assignments/{read.assignment_id}"
    return read


@router.post("/v1/assignments/{assignment_id}/end", response_model=schemas.AssignmentRead,
             dependencies=[writer],
             responses=problem_responses(409, s409="the assignment has already ended"))
async def end_assignment(assignment_id: str, body: schemas.AssignmentEnd, rt: RuntimeDep,
                         user: CurrentUser) -> schemas.AssignmentRead:
    """End an assignment on `valid_to` (kept in the history, never deleted); 409 when it
    already ends on or before that day."""
    async with rt.transaction() as session:
        return await cadres.end(session=session, assignment_id=assignment_id, body=body,
                                user=user)


@router.get("/v1/assignments", response_model=list[schemas.AssignmentRead],
            dependencies=[reader])
async def list_assignments(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                           cadre_id: Annotated[str | None, Query(max_length=64)] = None,
                           ) -> list[schemas.AssignmentRead]:
    """Assignments in your scope, current and ended, newest start first."""
    async with rt.snapshot() as session:
        return await cadres.search_assignments(session=session, user=user,
                                               commune_code=commune_code, cadre_id=cadre_id)
