"""Loan restructuring routes: request, group review, the chair's confirmation, reads."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from services.disbursement import schemas
from services.disbursement.handlers import restructurings, service_of
from services.disbursement.schemas import GroupReview, RestructuringConfirm, RestructuringCreate
from shared.auth import CurrentUser, require_role
from shared.openapi import problem_responses
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["disbursement"])

# A restructuring (or its loan) not in the state the action needs.
STATE = problem_responses(409, s409="the restructuring or its loan is not in the state this "
                                    "action needs (the detail names both)")
READERS = ("national_admin", "province_officer", "commune_officer", "commune_chair", "supervisor",
           "auditor")


async def _read(rt: Any, user: Any, restructuring_id: str) -> dict:
    async with rt.snapshot() as session:
        return await restructurings.read(session, user=user, restructuring_id=restructuring_id)


@router.get("/restructuring-options", dependencies=[require_role(*READERS)],
            response_model=list[schemas.RestructuringOptionRead])
async def restructuring_options(rt: RuntimeDep) -> list[dict]:
    """Restructuring options as configured: maxima, and which values are still unconfirmed."""
    return [asdict(o) for o in service_of(rt).options.values()]


@router.post("/loans/{instruction_id}/restructurings", status_code=201,
             dependencies=[require_role("commune_officer")],
             response_model=schemas.RestructuringRead, responses=problem_responses(
                 409, s409="the loan is not settled, or is already being restructured"))
async def request_restructuring(instruction_id: str, body: RestructuringCreate, rt: RuntimeDep,
                                user: CurrentUser, response: Response) -> dict:
    """Ask to restructure a settled, outstanding loan (extension or interest freeze) after a
    shock its household was exposed to; 422 names the field (`shock_id` for a loan outside the
    shock's area, `months` beyond the option's maximum), 409 for a loan not settled or already
    being restructured."""
    async with rt.transaction() as session:
        row = await restructurings.request(session, service_of(rt), user=user,
                                           loan_instruction_id=instruction_id, body=body)
    response.headers["Location"] = f"/v1/restructurings/{row.id}"
    return await _read(rt, user, row.id)


@router.get("/loans/{instruction_id}/restructurings", dependencies=[require_role(*READERS)],
            response_model=list[schemas.RestructuringRead])
async def list_restructurings(instruction_id: str, rt: RuntimeDep, user: CurrentUser
                              ) -> list[dict]:
    """A loan's restructurings, oldest first, each with its instruction."""
    async with rt.snapshot() as session:
        return await restructurings.for_loan(session, user=user,
                                             loan_instruction_id=instruction_id)


@router.get("/restructurings/{restructuring_id}", dependencies=[require_role(*READERS)],
            response_model=schemas.RestructuringRead)
async def read_restructuring(restructuring_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """A restructuring, its new schedule and its `restructure` instruction."""
    return await _read(rt, user, restructuring_id)


@router.post("/restructurings/{restructuring_id}/group-review",
             dependencies=[require_role("commune_officer", "commune_chair")],
             response_model=schemas.RestructuringRead, responses=STATE)
async def review_restructuring(restructuring_id: str, body: GroupReview, rt: RuntimeDep,
                               user: CurrentUser) -> dict:
    """Record the savings-and-loan group's meeting on a restructuring request."""
    async with rt.transaction() as session:
        await restructurings.review(session, service_of(rt), user=user,
                                    restructuring_id=restructuring_id, decision=body.decision,
                                    note=body.note)
    return await _read(rt, user, restructuring_id)


@router.post("/restructurings/{restructuring_id}/confirm",
             dependencies=[require_role("commune_chair")],
             response_model=schemas.RestructuringRead,
             responses={201: {"description": "restructure instruction issued",
                              "model": schemas.RestructuringRead},
                        200: {"description": "already confirmed: the same instruction"},
                        **problem_responses(403, s403="your role may not do this, or you "
                                                      "requested or reviewed it "
                                                      "(`maker_checker`)"),
                        **STATE})
async def confirm_restructuring(restructuring_id: str, rt: RuntimeDep, user: CurrentUser,
                                body: RestructuringConfirm | None = None) -> JSONResponse:
    """The commune chair confirms a reviewed restructuring (neither its requester nor its group
    reviewer): the one `restructure` instruction goes to the loan's partner (idempotent)."""
    body = body or RestructuringConfirm()
    async with rt.transaction() as session:
        _, created = await restructurings.confirm(session, service_of(rt), user=user,
                                                  restructuring_id=restructuring_id,
                                                  note=body.note)
    return JSONResponse(await _read(rt, user, restructuring_id),
                        status_code=201 if created else 200)
