"""Community supervision routes: projects, boards, inspections, findings, answers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from services.supervision import schemas
from services.supervision.api.common import HANDLERS, CommuneQ, read_role
from services.supervision.handlers import projects, service_of
from services.supervision.schemas import (
    BoardCreate,
    FindingAnswer,
    InspectionCreate,
    ProjectCreate,
    RecommendationCreate,
)
from shared.auth import CurrentUser, require_role
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["community supervision"])
RECORDERS = (*HANDLERS, "supervisor")
SCOPE = problem_responses(404, s404="the commune is outside your scope")


@router.post("/projects", status_code=201, dependencies=[require_role(*HANDLERS)],
             response_model=schemas.ProjectRead, responses=SCOPE)
async def create_project(body: ProjectCreate, rt: RuntimeDep, user: CurrentUser,
                         response: Response) -> dict:
    """Register a local project (road, cultural house, irrigation, school, clean water…)."""
    async with rt.transaction() as session:
        project_id = await projects.create_project(session, user=user, body=body)
    response.headers["Location"] = f"/v1/projects/{project_id}"
    async with rt.sessions() as session:
        return await projects.project(session, user=user, project_id=project_id)


@router.get("/projects", dependencies=[read_role], response_model=list[schemas.ProjectSummary])
async def list_projects(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None
                        ) -> list[dict]:
    """Projects in your scope."""
    async with rt.snapshot() as session:
        return await projects.projects(session, user=user, commune_code=commune_code)


@router.get("/projects/{project_id}", dependencies=[read_role],
            response_model=schemas.ProjectRead)
async def read_project(project_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """A project with its boards, inspections and findings."""
    async with rt.snapshot() as session:
        return await projects.project(session, user=user, project_id=project_id)


@router.post("/boards", status_code=201, dependencies=[require_role(*RECORDERS)],
             response_model=schemas.BoardRead, responses=SCOPE)
async def create_board(body: BoardCreate, rt: RuntimeDep, user: CurrentUser) -> dict:
    """A supervision board (≥ 5 members): per project, or the People's Inspection Board."""
    async with rt.transaction() as session:
        board_id = await projects.create_board(session, user=user, body=body)
    return {"board_id": board_id, **body.model_dump(mode="json")}


@router.post("/projects/{project_id}/inspections", status_code=201,
             dependencies=[require_role(*RECORDERS)], response_model=schemas.InspectionRecorded)
async def record_inspection(project_id: str, body: InspectionCreate, rt: RuntimeDep,
                            user: CurrentUser) -> dict:
    """An inspection with its checklist and findings; each finding's answer is due in 15 days."""
    async with rt.transaction() as session:
        return await projects.inspect(session, service_of(rt), user=user, project_id=project_id,
                                      body=body)


@router.post("/boards/{board_id}/recommendations", status_code=201,
             dependencies=[require_role(*RECORDERS)],
             response_model=schemas.RecommendationRecorded, responses=problem_responses(
                 409, s409="the board supervises a project: record an inspection instead"))
async def recommend(board_id: str, body: RecommendationCreate, rt: RuntimeDep,
                    user: CurrentUser) -> dict:
    """A People's Inspection Board recommendation on the programme (answer due in 15 days)."""
    async with rt.transaction() as session:
        finding_id = await projects.recommend(session, service_of(rt), user=user,
                                              board_id=board_id, body=body)
    return {"finding_id": finding_id}


@router.get("/findings", dependencies=[read_role], response_model=list[schemas.FindingRead])
async def list_findings(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                        breached: bool | None = None,
                        kind: Literal["finding", "recommendation"] | None = None) -> list[dict]:
    """Findings and recommendations with their answer state (`breached`: late or overdue)."""
    async with rt.snapshot() as session:
        return await projects.findings(session, user=user, commune_code=commune_code,
                                       breached=breached, kind=kind)


@router.post("/findings/{finding_id}/answer",
             dependencies=[require_role("commune_chair", "commune_officer", "national_admin")],
             response_model=schemas.FindingAnswered,
             responses=problem_responses(409, s409="the finding was already answered"))
async def answer_finding(finding_id: str, body: FindingAnswer, rt: RuntimeDep,
                         user: CurrentUser) -> dict:
    """The commune's answer to a finding or recommendation."""
    async with rt.transaction() as session:
        return await projects.answer(session, user=user, finding_id=finding_id, body=body)
