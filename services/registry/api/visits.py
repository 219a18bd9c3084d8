"""Visit routes: the door-to-door visit log of a household and a commune's coverage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.registry import schemas
from services.registry.api.common import reader, writer
from services.registry.config import Settings
from services.registry.handlers import visits
from shared.auth import CurrentUser
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(tags=["visits"])


@router.post("/v1/households/{household_id}/visits", status_code=201,
             response_model=schemas.VisitRead, dependencies=[writer],
             responses=problem_responses(409, s409="the household is archived"))
async def record_visit(household_id: str, body: schemas.VisitCreate, rt: RuntimeDep,
                       user: CurrentUser, response: Response) -> schemas.VisitRead:
    """Record a cadre's visit; publishes `registry.household.visited.v1` (the household's version
    does not change). 409 when the household is archived; 422 when `visited_on` is in the
    future, a `follow_up` has no `next_visit_due`, or the cadre is not of the household's
    commune (`cadre_id`). Nothing is stored on refusal."""
    async with rt.transaction() as session:
        read = await visits.record(session=session, outbox=rt.outbox, household_id=household_id,
                                   body=body, user=user)
    response.headers["Location"] = f"/v1/households/{household_id}/visits"
    return read


@router.get("/v1/households/{household_id}/visits", response_model=list[schemas.VisitRead],
            dependencies=[reader])
async def list_visits(household_id: str, rt: RuntimeDep,
                      user: CurrentUser) -> list[schemas.VisitRead]:
    """Every visit of a household, newest first."""
    async with rt.snapshot() as session:
        return await visits.list_visits(session=session, household_id=household_id, user=user)


@router.get("/v1/coverage", response_model=schemas.Coverage, dependencies=[reader],
            responses=problem_responses(404, s404="the commune is unknown or outside your scope"))
async def coverage(rt: RuntimeDep, user: CurrentUser,
                   commune_code: Annotated[str, Query(pattern=r"^\d{5}$")],
                   review_round: Annotated[str, Query(min_length=1, max_length=40)],
                   cursor: Annotated[str | None, Query(max_length=100)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> schemas.Coverage:
    """A commune's door-to-door coverage in a review round: per village the active households,
    visited, surveyed (a `surveyed` visit or a survey of the round), not reached (every visit of
    the round not_home/refused and at least `REGISTRY_COVERAGE_ATTEMPTS` (3) of them), overdue
    follow-ups (the latest visit of the round a follow_up whose `next_visit_due` has passed);
    per cadre of the commune its visits; and the households nobody has visited this round
    (paged: `next_cursor`). Visits without a `review_round` count in no round. 404 for a
    commune unknown or outside your scope."""
    settings = rt.settings
    assert isinstance(settings, Settings)
    async with rt.snapshot() as session:
        return await visits.coverage(session=session, user=user, commune_code=commune_code,
                                     review_round=review_round,
                                     attempts=settings.coverage_attempts, cursor=cursor,
                                     limit=limit)
