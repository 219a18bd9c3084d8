"""Community supervision of local projects: boards, inspections, findings, the People's
Inspection Board's recommendations, and the commune's answers (due in 15 days)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.supervision import domain, tables
from services.supervision.handlers.common import (
    Service,
    conflict,
    invalid,
    jsonable,
    now,
    require_commune,
)
from services.supervision.schemas import (
    BoardCreate,
    FindingAnswer,
    FindingIn,
    InspectionCreate,
    ProjectCreate,
)
from shared.auth import Principal, actor_of, scope_clause
from shared.problems import not_found

PR, B, INS, F = tables.project, tables.board, tables.inspection, tables.finding


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


async def create_project(session: AsyncSession, *, user: Principal, body: ProjectCreate) -> str:
    """Register a local project for community supervision."""
    province = await require_commune(session, user, body.commune_code)
    if body.planned_end < body.planned_start:
        raise invalid("planned_end", "must not be before planned_start", code="before_start")
    project_id = _id("DA")
    await session.execute(sa.insert(PR).values(id=project_id, province_code=province,
                                               created_by=actor_of(user), **body.model_dump()))
    return project_id


async def create_board(session: AsyncSession, *, user: Principal, body: BoardCreate) -> str:
    """A Community Investment Supervision Board for a project, or the People's Inspection Board."""
    province = await require_commune(session, user, body.commune_code)
    if body.kind == "investment_supervision":
        if body.project_id is None:
            raise invalid("project_id", "an investment supervision board supervises a project",
                          code="required")
        project = (await session.execute(sa.select(PR).where(PR.c.id == body.project_id))).first()
        if project is None or project.commune_code != body.commune_code:
            raise invalid("project_id", f"no project {body.project_id} in commune "
                          f"{body.commune_code}", code="unknown_project")
    elif body.project_id is not None:
        raise invalid("project_id", "the People's Inspection Board is commune-wide",
                      code="not_allowed")
    board_id = _id("BGS" if body.kind == "investment_supervision" else "TTND")
    await session.execute(sa.insert(B).values(
        id=board_id, commune_code=body.commune_code, province_code=province, kind=body.kind,
        project_id=body.project_id, name=body.name, created_by=actor_of(user),
        members=[m.model_dump() for m in body.members]))
    return board_id


async def _finding(session: AsyncSession, svc: Service, *, board: Any, kind: str,
                   body: FindingIn, project_id: str | None, inspection_id: str | None) -> str:
    raised = now()
    finding_id = _id("KL" if kind == "finding" else "KN")
    await session.execute(sa.insert(F).values(
        id=finding_id, commune_code=board.commune_code, province_code=board.province_code,
        board_id=board.id, project_id=project_id, inspection_id=inspection_id, kind=kind,
        severity=body.severity, description=body.description,
        recommendation=body.recommendation, raised_at=raised,
        answer_due_at=domain.answer_due(raised, days=svc.settings.answer_due_days)))
    return finding_id


async def _board(session: AsyncSession, user: Principal, board_id: str, field: str) -> Any:
    row = (await session.execute(sa.select(B).where(B.c.id == board_id))).first()
    if row is None or not user.covers_row(row):
        raise invalid(field, f"no board {board_id}", code="unknown_board")
    return row


async def inspect(session: AsyncSession, svc: Service, *, user: Principal, project_id: str,
                  body: InspectionCreate) -> dict[str, Any]:
    """Record an inspection by the project's board, with its checklist and findings."""
    project = (await session.execute(sa.select(PR).where(PR.c.id == project_id))).first()
    if project is None or not user.covers_row(project):
        raise not_found("project", project_id)
    board = await _board(session, user, body.board_id, "board_id")
    if board.project_id != project_id:
        raise invalid("board_id", f"board {board.id} does not supervise project {project_id}",
                      code="other_project")
    names = {m["name"] for m in board.members}
    for i, name in enumerate(body.members_present):
        if name not in names:
            raise invalid(f"members_present.{i}", f"{name} is not a member of the board",
                          code="not_a_member")
    inspection_id = _id("KT")
    await session.execute(sa.insert(INS).values(
        id=inspection_id, project_id=project_id, board_id=board.id,
        inspected_on=body.inspected_on, members_present=body.members_present,
        checklist=body.checklist.model_dump(), notes=body.notes, created_by=actor_of(user)))
    findings = [await _finding(session, svc, board=board, kind="finding", body=f,
                               project_id=project_id, inspection_id=inspection_id)
                for f in body.findings]
    return {"inspection_id": inspection_id, "finding_ids": findings}


async def recommend(session: AsyncSession, svc: Service, *, user: Principal, board_id: str,
                    body: FindingIn) -> str:
    """A People's Inspection Board recommendation on the programme itself."""
    board = (await session.execute(sa.select(B).where(B.c.id == board_id))).first()
    if board is None or not user.covers_row(board):
        raise not_found("board", board_id)
    if board.kind != "peoples_inspection":
        raise conflict(f"board {board_id} supervises a project: record its findings with an "
                       "inspection")
    return await _finding(session, svc, board=board, kind="recommendation", body=body,
                          project_id=None, inspection_id=None)


async def answer(session: AsyncSession, *, user: Principal, finding_id: str,
                 body: FindingAnswer) -> dict[str, Any]:
    """The commune answers a finding or recommendation (once)."""
    row = (await session.execute(sa.select(F).where(F.c.id == finding_id)
                                 .with_for_update())).first()
    if row is None or not user.covers_row(row):
        raise not_found("finding", finding_id)
    if row.answered_at is not None:
        raise conflict(f"finding {finding_id} was answered on {row.answered_at.isoformat()}")
    at = now()
    await session.execute(sa.update(F).where(F.c.id == finding_id).values(
        answered_at=at, answer=body.answer, answered_by=actor_of(user)))
    return {"finding_id": finding_id, "answered_at": at.isoformat(),
            "answer_state": domain.answer_state(due_at=row.answer_due_at, answered_at=at, now=at)}


def finding_view(row: Any) -> dict[str, Any]:
    """A finding with its answer state (in time, late, awaiting, overdue)."""
    d = jsonable(row)
    d["finding_id"] = d.pop("id")
    state = domain.answer_state(due_at=row.answer_due_at, answered_at=row.answered_at, now=now())
    d["answer_state"] = state
    d["breached"] = state in ("answered_late", "overdue")
    return d


async def findings(session: AsyncSession, *, user: Principal, commune_code: str | None,
                   breached: bool | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """Findings and recommendations in the caller's scope, newest first."""
    q = sa.select(F).order_by(F.c.raised_at.desc()).limit(500)
    q = q.where(scope_clause(user, F))
    if commune_code:
        q = q.where(F.c.commune_code == commune_code)
    if kind:
        q = q.where(F.c.kind == kind)
    out = [finding_view(r) for r in (await session.execute(q)).all()]
    return out if breached is None else [f for f in out if f["breached"] == breached]


async def project(session: AsyncSession, *, user: Principal | None, project_id: str
                  ) -> dict[str, Any]:
    """A project, its boards, inspections and findings."""
    row = (await session.execute(sa.select(PR).where(PR.c.id == project_id))).first()
    if row is None or (user is not None and not user.covers_row(row)):
        raise not_found("project", project_id)
    out = jsonable(row)
    out["project_id"] = out.pop("id")
    out["boards"] = [jsonable(b) for b in (await session.execute(
        sa.select(B).where(B.c.project_id == project_id))).all()]
    out["inspections"] = [jsonable(i) for i in (await session.execute(
        sa.select(INS).where(INS.c.project_id == project_id).order_by(INS.c.inspected_on))).all()]
    out["findings"] = [finding_view(f) for f in (await session.execute(
        sa.select(F).where(F.c.project_id == project_id).order_by(F.c.raised_at))).all()]
    return out


async def projects(session: AsyncSession, *, user: Principal, commune_code: str | None
                   ) -> list[dict[str, Any]]:
    """Projects in the caller's scope."""
    q = sa.select(PR).order_by(PR.c.created_at.desc()).limit(500)
    q = q.where(scope_clause(user, PR))
    if commune_code:
        q = q.where(PR.c.commune_code == commune_code)
    out = []
    for r in (await session.execute(q)).all():
        d = jsonable(r)
        d["project_id"] = d.pop("id")
        out.append(d)
    return out


async def public_commune(session: AsyncSession, *, commune_code: str) -> dict[str, Any]:
    """What the public commune page shows: open projects, findings, answers in time or not."""
    rows = (await session.execute(sa.select(PR).where(PR.c.commune_code == commune_code,
                                                      PR.c.status == "open")
                                  .order_by(PR.c.planned_start))).all()
    all_findings = [finding_view(f) for f in (await session.execute(
        sa.select(F).where(F.c.commune_code == commune_code).order_by(F.c.raised_at.desc())
    )).all()]
    by_project: dict[str | None, list[dict[str, Any]]] = {}
    for f in all_findings:
        by_project.setdefault(f["project_id"], []).append(f)
    projects_out = []
    for r in rows:
        d = jsonable(r, drop=("created_by",))
        d["findings"] = by_project.get(r.id, [])
        projects_out.append(d)
    postings = (await session.execute(
        sa.select(tables.posting.c.id, tables.posting.c.review_round, tables.posting.c.status,
                  tables.posting.c.closes_at)
        .where(tables.posting.c.commune_code == commune_code)
        .order_by(tables.posting.c.created_at.desc()).limit(10))).all()
    return {"commune_code": commune_code, "projects": projects_out,
            "recommendations": by_project.get(None, []),
            "postings": [jsonable(p) for p in postings],
            "answered_in_time": sum(f["answer_state"] == "answered_in_time"
                                    for f in all_findings),
            "breached": sum(f["breached"] for f in all_findings),
            "awaiting": sum(f["answer_state"] == "awaiting" for f in all_findings)}
