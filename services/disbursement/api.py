"""Disbursement HTTP routes: translate HTTP ↔ handlers, nothing else."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from services.disbursement import schemas
from services.disbursement.handlers import applications, groups, instructions, ledger, service_of
from services.disbursement.schemas import (
    ApplicationCreate,
    BudgetSet,
    Cancel,
    GroupCreate,
    GroupReview,
    Issue,
    MemberAdd,
    Reject,
    Reschedule,
)
from shared.auth import CurrentUser, require_role
from shared.db import BIGINT_MAX
from shared.openapi import problem_responses
from shared.problems import not_found
from shared.runtime import RuntimeDep

router = APIRouter(prefix="/v1", tags=["disbursement"])

READERS = ("national_admin", "province_officer", "commune_officer", "commune_chair", "supervisor",
           "auditor")
OFFICERS = ("national_admin", "province_officer", "commune_officer")
read_role = require_role(*READERS)
CommuneQ = Annotated[str | None, Query(pattern=r"^\d{5}$")]
# An application or instruction not in the state the action needs.
STATE = problem_responses(409, s409="the application or instruction is not in the state this "
                                    "action needs (the detail names both)")


async def _application(rt: Any, user: Any, application_id: str) -> dict:
    async with rt.snapshot() as session:
        return await applications.read(session, user=user, application_id=application_id)


# --- programmes, eligibility projection, budgets ------------------------------------------

@router.get("/programmes", dependencies=[read_role], response_model=list[schemas.ProgrammeRead])
async def list_programmes(rt: RuntimeDep) -> list[dict]:
    """Programmes as configured (rates, ceilings, terms, the eligibility each requires, partner)."""
    return [asdict(p) | {"overdue_rate_pct": p.overdue_rate_pct}
            for p in service_of(rt).programmes.values()]


@router.get("/households/{household_id}", dependencies=[read_role],
            response_model=schemas.HouseholdRead)
async def household(household_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """What disbursement knows of a household: eligibility (from eligibility's events, its only
    source), complaint holds, savings-and-loan group."""
    async with rt.snapshot() as session:
        return await groups.household_view(session, user=user, household_id=household_id)


@router.put("/budgets/{programme_code}/{commune_code}",
            dependencies=[require_role("national_admin", "province_officer")],
            response_model=schemas.BudgetRead)
async def set_budget(programme_code: str, commune_code: Annotated[str, Path(pattern=r"^\d{5}$")],
                     body: BudgetSet, rt: RuntimeDep, user: CurrentUser) -> dict:
    """Set a commune's budget for a programme (never below what is committed)."""
    async with rt.transaction() as session:
        return await groups.set_budget(session, service_of(rt), user=user,
                                       programme_code=programme_code, commune_code=commune_code,
                                       body=body)


@router.get("/budgets", dependencies=[read_role], response_model=list[schemas.BudgetRead],
            responses=problem_responses(404, s404="the commune is outside your scope"))
async def list_budgets(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                       programme_code: str | None = None) -> list[dict]:
    """Budgets: total, committed (instructions issued and not given back), remaining."""
    async with rt.transaction() as session:
        return await groups.list_budgets(session, service_of(rt), user=user,
                                         commune_code=commune_code, programme_code=programme_code)


# --- savings-and-loan groups ---------------------------------------------------------------

@router.post("/groups", status_code=201, dependencies=[require_role(*OFFICERS)],
             response_model=schemas.GroupRead)
async def create_group(body: GroupCreate, rt: RuntimeDep, user: CurrentUser,
                       response: Response) -> dict:
    """Create a savings-and-loan group; it takes applications once it has 3 members."""
    async with rt.transaction() as session:
        row = await groups.create_group(session, user=user, body=body)
    response.headers["Location"] = f"/v1/groups/{row.id}"
    async with rt.snapshot() as session:
        return await groups.read_group(session, user=user, group_id=row.id)


@router.get("/groups", dependencies=[read_role], response_model=list[schemas.GroupSummary])
async def list_groups(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                      village: str | None = None) -> list[dict]:
    """Groups in your scope."""
    async with rt.snapshot() as session:
        return await groups.list_groups(session, user=user, commune_code=commune_code,
                                        village=village)


@router.get("/groups/{group_id}", dependencies=[read_role], response_model=schemas.GroupRead)
async def read_group(group_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """A group and its members."""
    async with rt.snapshot() as session:
        return await groups.read_group(session, user=user, group_id=group_id)


@router.post("/groups/{group_id}/members", status_code=201,
             dependencies=[require_role(*OFFICERS)], response_model=schemas.GroupRead)
async def add_member(group_id: str, body: MemberAdd, rt: RuntimeDep, user: CurrentUser) -> dict:
    """Add a household of the group's village (3–60 members, one group per household)."""
    async with rt.transaction() as session:
        return await groups.add_member(session, user=user, group_id=group_id,
                                       household_id=body.household_id)


# The one who submitted (or group-reviewed) an application may not also issue its instruction.
MAKER_CHECKER = problem_responses(403, s403="your role may not do this, or you submitted or "
                                            "reviewed this application (`maker_checker`)")


# --- applications --------------------------------------------------------------------------

@router.post("/applications", status_code=201, dependencies=[require_role(*OFFICERS)],
             response_model=schemas.ApplicationRead,
             responses=problem_responses(404, s404="the household is unknown or outside your "
                                                   "scope"))
async def submit_application(body: ApplicationCreate, rt: RuntimeDep, user: CurrentUser,
                             response: Response) -> dict:
    """Apply; 422 names the reason (not a member, not eligible and why, ceiling, term, budget,
    an open application already)."""
    async with rt.transaction() as session:
        row = await applications.submit(session, service_of(rt), user=user, body=body)
    response.headers["Location"] = f"/v1/applications/{row.id}"
    return await _application(rt, user, row.id)


@router.get("/applications", dependencies=[read_role],
            response_model=list[schemas.ApplicationSummary])
async def list_applications(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                            status: str | None = None, programme_code: str | None = None,
                            household_id: str | None = None,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                            offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0) -> list[dict]:
    """Applications in your scope, newest first."""
    async with rt.snapshot() as session:
        return await applications.listing(session, user=user, commune_code=commune_code,
                                          status=status, programme_code=programme_code,
                                          household_id=household_id, limit=limit, offset=offset)


@router.get("/applications/{application_id}", dependencies=[read_role],
            response_model=schemas.ApplicationRead)
async def read_application(application_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """The application, its instruction, and every status of both with time and reason."""
    return await _application(rt, user, application_id)


@router.post("/applications/{application_id}/group-review",
             dependencies=[require_role("commune_officer", "commune_chair")],
             response_model=schemas.ApplicationRead, responses=STATE)
async def group_review(application_id: str, body: GroupReview, rt: RuntimeDep,
                       user: CurrentUser) -> dict:
    """Record the savings-and-loan group's open meeting on a loan application."""
    async with rt.transaction() as session:
        await applications.review(session, service_of(rt), user=user,
                                  application_id=application_id, decision=body.decision,
                                  note=body.note)
    return await _application(rt, user, application_id)


async def _issue(rt: Any, user: Any, application_id: str, body: Issue | None, *,
                 credit: bool) -> JSONResponse:
    body = body or Issue()
    async with rt.transaction() as session:
        _, created = await applications.confirm(
            session, service_of(rt), user=user, application_id=application_id,
            scheduled_date=body.scheduled_date, note=body.note, credit=credit)
    return JSONResponse(await _application(rt, user, application_id),
                        status_code=201 if created else 200)


@router.post("/applications/{application_id}/confirm",
             dependencies=[require_role("commune_chair")], response_model=schemas.ApplicationRead,
             responses={201: {"description": "instruction issued",
                              "model": schemas.ApplicationRead},
                        200: {"description": "already confirmed: the same instruction"},
                        **MAKER_CHECKER, **STATE})
async def confirm(application_id: str, rt: RuntimeDep, user: CurrentUser,
                  body: Issue | None = None) -> JSONResponse:
    """The commune chair confirms a reviewed loan: the one instruction is issued (idempotent)."""
    return await _issue(rt, user, application_id, body, credit=True)


@router.post("/applications/{application_id}/approve",
             dependencies=[require_role("commune_officer")], response_model=schemas.ApplicationRead,
             responses={201: {"description": "instruction issued",
                              "model": schemas.ApplicationRead},
                        200: {"description": "already approved: the same instruction"},
                        **MAKER_CHECKER, **STATE})
async def approve(application_id: str, rt: RuntimeDep, user: CurrentUser,
                  body: Issue | None = None) -> JSONResponse:
    """A commune officer approves livelihood support: the one instruction is issued."""
    return await _issue(rt, user, application_id, body, credit=False)


@router.post("/applications/{application_id}/reject",
             dependencies=[require_role("commune_chair", "commune_officer")],
             response_model=schemas.ApplicationRead, responses=STATE)
async def reject(application_id: str, body: Reject, rt: RuntimeDep, user: CurrentUser) -> dict:
    """Refuse an application before any instruction, with the reason."""
    async with rt.transaction() as session:
        await applications.reject(session, service_of(rt), user=user,
                                  application_id=application_id, reason=body.reason)
    return await _application(rt, user, application_id)


# --- instructions --------------------------------------------------------------------------

async def _instruction(rt: Any, user: Any, instruction_id: str) -> dict:
    async with rt.snapshot() as session:
        view = await applications.instruction_view(session, instruction_id=instruction_id)
    if view is None or not user.covers(commune_code=view["commune_code"],
                                       province_code=view["province_code"]):
        raise not_found("instruction", instruction_id)
    return view


@router.get("/instructions/{instruction_id}", dependencies=[read_role],
            response_model=schemas.InstructionRead)
async def read_instruction(instruction_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """An instruction and its status history."""
    return await _instruction(rt, user, instruction_id)


@router.post("/instructions/{instruction_id}/cancel",
             dependencies=[require_role("commune_chair")], response_model=schemas.InstructionRead,
             responses=STATE)
async def cancel_instruction(instruction_id: str, body: Cancel, rt: RuntimeDep,
                             user: CurrentUser) -> dict:
    """Cancel an instruction not yet sent (approved or on hold); the budget is given back."""
    async with rt.transaction() as session:
        await instructions.cancel(session, service_of(rt), user=user,
                                  instruction_id=instruction_id, reason=body.reason)
    return await _instruction(rt, user, instruction_id)


@router.post("/instructions/{instruction_id}/reschedule",
             dependencies=[require_role("commune_chair", "commune_officer")],
             response_model=schemas.InstructionRead, responses=STATE)
async def reschedule_instruction(instruction_id: str, body: Reschedule, rt: RuntimeDep,
                                 user: CurrentUser) -> dict:
    """Move the disbursement day of an unsent instruction (sent at once if the day has come)."""
    async with rt.transaction() as session:
        await instructions.reschedule(session, service_of(rt), user=user,
                                      instruction_id=instruction_id,
                                      scheduled_date=body.scheduled_date)
    return await _instruction(rt, user, instruction_id)


# --- loans and reconciliation --------------------------------------------------------------

@router.get("/loans", dependencies=[read_role], response_model=list[schemas.LoanSummary])
async def list_loans(rt: RuntimeDep, user: CurrentUser, commune_code: CommuneQ = None,
                     household_id: str | None = None, overdue: bool | None = None) -> list[dict]:
    """Settled loans with balance and overdue flag (overdue interest at 130% of the rate)."""
    async with rt.snapshot() as session:
        return await ledger.list_loans(session, user=user, commune_code=commune_code,
                                       household_id=household_id, overdue=overdue)


@router.get("/loans/{instruction_id}", dependencies=[read_role], response_model=schemas.LoanRead)
async def read_loan(instruction_id: str, rt: RuntimeDep, user: CurrentUser) -> dict:
    """A loan: schedule (monthly interest, principal at term), repayments, position today."""
    async with rt.snapshot() as session:
        return await ledger.read_loan(session, user=user, instruction_id=instruction_id)


_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@router.get("/reconciliation", dependencies=[read_role],
            responses={200: {"model": schemas.ReconciliationRead,
                             "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def reconciliation(request: Request, rt: RuntimeDep, user: CurrentUser,
                         programme_code: str | None = None, commune_code: CommuneQ = None,
                         format: Annotated[str | None, Query(pattern="^(json|csv)$")] = None
                         ) -> Response:
    """Counts and amounts per status and the mismatches with partners; `?format=csv` or
    `Accept: text/csv` for a spreadsheet."""
    async with rt.snapshot() as session:
        report = await ledger.reconciliation(session, user=user, programme_code=programme_code,
                                             commune_code=commune_code)
    wants_csv = format == "csv" or (format is None
                                    and "text/csv" in request.headers.get("accept", ""))
    if wants_csv:
        # The programme code is caller text: only ASCII letters, digits, - and _ reach the header
        # (anything else could not be encoded in it, or would end the quoted filename).
        programme = _FILENAME_UNSAFE.sub("_", programme_code or "all")
        name = f"reconciliation-{programme}-{commune_code or 'all'}-{date.today()}.csv"
        return Response(ledger.reconciliation_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return JSONResponse(report)
