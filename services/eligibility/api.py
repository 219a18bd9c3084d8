"""Eligibility HTTP routes: translate HTTP ↔ handlers, nothing else."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.eligibility import schemas
from services.eligibility.handlers import reads, reevaluation, rulesets, service_of
from services.eligibility.schemas import EvaluateRequest
from shared.auth import CurrentUser, require_role
from shared.db import BIGINT_MAX
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["eligibility"])

READERS = ("national_admin", "province_officer", "commune_officer", "commune_chair", "supervisor",
           "auditor")
read_role = require_role(*READERS)
Category = Annotated[str | None, Query(pattern=r"^(poor|near_poor|middle|not_poor|incomplete)$")]
Status = Annotated[str | None, Query(pattern=r"^(provisional|recognized|superseded)$")]


@router.get("/rulesets", dependencies=[read_role], response_model=list[schemas.RulesetSummary])
async def list_rulesets(rt: RuntimeDep) -> list[dict[str, Any]]:
    """Every active rule set (national standards and provincial overrides), oldest first."""
    async with rt.snapshot() as session:
        book = await rulesets.sync(session, service_of(rt))
    return [reads.ruleset_summary(rs) for rs in book.all]


@router.get("/rulesets/{ruleset_id}", dependencies=[read_role],
            response_model=schemas.RulesetDetail)
async def get_ruleset(ruleset_id: str, rt: RuntimeDep) -> dict[str, Any]:
    """One rule set: lines, bands, threshold, indicators (vi + en, dimension, definition) and
    the values not yet confirmed."""
    async with rt.snapshot() as session:
        await rulesets.sync(session, service_of(rt))
    return reads.ruleset_detail(reads.get_ruleset(service_of(rt), ruleset_id))


@router.post("/rulesets/{ruleset_id}/reevaluate", status_code=202,
             dependencies=[require_role("national_admin")],
             response_model=schemas.ReevaluationRead,
             responses=problem_responses(409, s409="a re-evaluation of the rule set is running"))
async def reevaluate(ruleset_id: str, rt: RuntimeDep, user: CurrentUser,
                     response: Response) -> dict[str, Any]:
    """Reload the rule-set files, make them the rule sets every replica decides by, and re-decide
    every household the rule set affects, in batches; follow the job at the Location. A re-run
    changes nothing."""
    svc = service_of(rt)
    async with rt.transaction() as session:
        job = await reevaluation.start(session, svc, user=user, ruleset_id=ruleset_id)
    rt.tasks.append(asyncio.create_task(reevaluation.run(rt.sessions, svc, job["job_id"]),
                                        name=f"reevaluation-{job['job_id']}"))
    response.headers["Location"] = f"/v1/reevaluations/{job['job_id']}"
    return job


@router.get("/reevaluations/{job_id}", dependencies=[require_role("national_admin", "auditor")],
            response_model=schemas.ReevaluationRead)
async def get_reevaluation(job_id: str, rt: RuntimeDep) -> dict[str, Any]:
    """A re-evaluation job: status, total, processed, changed, progress."""
    async with rt.snapshot() as session:
        return await reevaluation.read(session, job_id)


@router.post("/evaluate", dependencies=[read_role], response_model=schemas.EvaluationRead)
async def evaluate(body: EvaluateRequest, rt: RuntimeDep) -> dict[str, Any]:
    """What-if: the category these inputs would get, and why. Stores nothing."""
    async with rt.snapshot() as session:
        await rulesets.sync(session, service_of(rt))
    return reads.evaluate(service_of(rt), body)


@router.get("/households/{household_id}/classification", dependencies=[read_role],
            response_model=schemas.CurrentClassificationRead)
async def current_classification(household_id: str, rt: RuntimeDep,
                                 user: CurrentUser) -> dict[str, Any]:
    """The household's current classification (status, explanation) and recognized standing."""
    async with rt.snapshot() as session:
        return await reads.current(session, service_of(rt), user=user, household_id=household_id)


@router.get("/households/{household_id}/classifications", dependencies=[read_role],
            response_model=list[schemas.ClassificationRead])
async def classification_history(household_id: str, rt: RuntimeDep,
                                 user: CurrentUser) -> list[dict[str, Any]]:
    """Every classification of the household, newest first."""
    async with rt.snapshot() as session:
        return await reads.history(session, user=user, household_id=household_id)


@router.get("/households/{household_id}/programs", dependencies=[read_role],
            response_model=schemas.ProgramsRead)
async def household_programs(household_id: str, rt: RuntimeDep,
                             user: CurrentUser) -> dict[str, Any]:
    """Each programme with eligible true/false and the reason."""
    async with rt.snapshot() as session:
        return await reads.programs(session, service_of(rt), user=user,
                                    household_id=household_id)


@router.get("/classifications", dependencies=[read_role],
            response_model=list[schemas.ClassificationRead])
async def list_classifications(rt: RuntimeDep, user: CurrentUser,
                               commune_code: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
                               category: Category = None, status: Status = None,
                               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                               offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0) -> list[dict[str, Any]]:
    """Classifications in your scope, newest first."""
    async with rt.snapshot() as session:
        return await reads.listing(session, user=user, commune_code=commune_code,
                                   category=category, status=status, limit=limit, offset=offset)
