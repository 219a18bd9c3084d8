"""Complaint routes: officer/inspection-board entry, listing, assign, resolve, close."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from services.supervision import schemas
from services.supervision.api.common import HANDLERS, CommuneQ, read_role
from services.supervision.handlers import complaints, service_of
from services.supervision.schemas import (
    ComplaintAssign,
    ComplaintClose,
    ComplaintCreate,
    ComplaintReject,
    ComplaintResolve,
)
from shared.auth import CurrentUser, require_role
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1/complaints", tags=["complaints"])
STEP = problem_responses(409, s409="the complaint's status does not allow this step")
Status = Literal["received", "open", "in_progress", "resolved", "rejected", "closed"]


@router.post("", status_code=201,
             dependencies=[require_role(*HANDLERS, "supervisor")],
             response_model=schemas.ComplaintFiled,
             responses=problem_responses(404, s404="the commune is outside your scope"))
async def create_complaint(body: ComplaintCreate, rt: RuntimeDep, user: CurrentUser,
                           response: Response) -> dict:
    """A complaint taken in by an officer (hotline, in person) or raised by the inspection board."""
    async with rt.transaction() as session:
        out = await complaints.create(session, service_of(rt), user=user, body=body)
    response.headers["Location"] = f"/v1/complaints/{out['complaint_id']}"
    return out


@router.get("", dependencies=[read_role], response_model=list[schemas.ComplaintSummary])
async def list_complaints(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                          status: Status | None = None, overdue: bool | None = None,
                          posting_id: str | None = None,
                          household_id: str | None = None) -> list[dict]:
    """Complaints in your scope (never the filer's contact), newest first."""
    async with rt.snapshot() as session:
        return await complaints.listing(session, user=user, commune_code=commune_code,
                                        status=status, overdue=overdue, posting_id=posting_id,
                                        household_id=household_id)


@router.get("/{complaint_id}", dependencies=[read_role], response_model=schemas.ComplaintRead)
async def read_complaint(complaint_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """A complaint and its history (the contact only for those who handle complaints)."""
    async with rt.snapshot() as session:
        return await complaints.read(session, user=user, complaint_id=complaint_id)


@router.post("/{complaint_id}/assign", dependencies=[require_role(*HANDLERS)],
             response_model=schemas.ComplaintRead, responses=STEP)
async def assign_complaint(complaint_id: str, body: ComplaintAssign, rt: RuntimeDep,
                           user: CurrentUser) -> dict:
    """Assign for investigation (→ in_progress)."""
    async with rt.transaction() as session:
        await complaints.assign(session, service_of(rt), user=user, complaint_id=complaint_id,
                                body=body)
    async with rt.sessions() as session:
        return await complaints.read(session, user=user, complaint_id=complaint_id)


@router.post("/{complaint_id}/resolve", dependencies=[require_role(*HANDLERS)],
             response_model=schemas.ComplaintRead, responses=STEP)
async def resolve_complaint(complaint_id: str, body: ComplaintResolve, rt: RuntimeDep,
                            user: CurrentUser) -> dict:
    """Answer after investigation (→ resolved); upheld about a household's data or category asks
    the registry to verify it, about a payment or misconduct holds its payments."""
    async with rt.transaction() as session:
        await complaints.resolve(session, service_of(rt), user=user, complaint_id=complaint_id,
                                 body=body)
    async with rt.sessions() as session:
        return await complaints.read(session, user=user, complaint_id=complaint_id)


@router.post("/{complaint_id}/reject", dependencies=[require_role(*HANDLERS)],
             response_model=schemas.ComplaintRead, responses=STEP)
async def reject_complaint(complaint_id: str, body: ComplaintReject, rt: RuntimeDep,
                           user: CurrentUser) -> dict:
    """Refuse a complaint that cannot be taken up (→ rejected), with the reason."""
    async with rt.transaction() as session:
        await complaints.reject(session, service_of(rt), user=user, complaint_id=complaint_id,
                                body=body)
    async with rt.sessions() as session:
        return await complaints.read(session, user=user, complaint_id=complaint_id)


@router.post("/{complaint_id}/close", dependencies=[require_role(*HANDLERS)],
             response_model=schemas.ComplaintRead, responses=STEP)
async def close_complaint(complaint_id: str, rt: RuntimeDep, user: CurrentUser,
                          body: ComplaintClose | None = None) -> dict:
    """Close an answered complaint (a payment hold it set off is released)."""
    async with rt.transaction() as session:
        await complaints.close(session, service_of(rt), user=user, complaint_id=complaint_id,
                               body=body or ComplaintClose())
    async with rt.sessions() as session:
        return await complaints.read(session, user=user, complaint_id=complaint_id)
