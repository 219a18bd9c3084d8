"""Applications: submit (every rule checked, 422 with the reason), group review, confirmation by
the commune chair or approval by a commune officer (issues the one instruction), reads."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import domain, events, tables
from services.disbursement.domain.programmes import ApplicantFacts
from services.disbursement.handlers import instructions
from services.disbursement.handlers.common import (
    Service,
    invalid,
    jsonable,
    province_of,
    record_application_status,
    violations_problem,
)
from services.disbursement.schemas import ApplicationCreate
from shared.auth import Principal, actor_of, scope_clause
from shared.problems import Problem, not_found

A = tables.application
H = tables.household


def eligibility_of(household: Any, programme: domain.Programme) -> tuple[bool, str]:
    """What the projection says about the programme the application needs."""
    status = (household.programs or {}).get(programme.requires_eligibility)
    if status is None:
        return False, (f"eligibility has not decided {programme.requires_eligibility} for this "
                       "household")
    return bool(status.get("eligible")), str(status.get("reason") or "")


async def _facts(session: AsyncSession, *, household: Any, programme: domain.Programme,
                 group_id: str | None) -> ApplicantFacts:
    if household is None:
        return ApplicantFacts(known=False)
    eligible, reason = eligibility_of(household, programme)
    facts = ApplicantFacts(known=True, eligible=eligible, eligibility_reason=reason,
                           village=household.village, commune_code=household.commune_code)
    if group_id is not None:
        group = (await session.execute(sa.select(tables.savings_group)
                                       .where(tables.savings_group.c.id == group_id))).first()
        if group is not None:
            facts.group_found = True
            facts.group_members = group.member_count
            facts.group_village = group.village
            facts.group_member = bool(await session.scalar(sa.select(sa.func.count()).where(
                tables.group_member.c.group_id == group_id,
                tables.group_member.c.household_id == household.household_id)))
    return facts


async def _event(session: AsyncSession, svc: Service, row: Any, *, type: str,
                 note: str | None = None, reason: str | None = None, actor: str | None) -> None:
    await svc.emit(session, events.TOPIC, type=type, subject=row.household_id,
                   data=events.ApplicationEventV1(
                       application_id=row.id, household_id=row.household_id,
                       programme_code=row.programme_code, amount_vnd=row.amount_vnd,
                       term_months=row.term_months, status=row.status, group_id=row.group_id,
                       note=note, reason=reason, actor=actor).model_dump(mode="json"))


async def submit(session: AsyncSession, svc: Service, *, user: Principal,
                 body: ApplicationCreate) -> Any:
    """Check every rule against the projection, the group and the budget; record `submitted`."""
    programme = svc.programme(body.programme_code)
    household = (await session.execute(sa.select(H).where(H.c.household_id == body.household_id))
                 ).first()
    if household is not None and household.commune_code and not user.covers(
            commune_code=household.commune_code,
            province_code=await province_of(session, household.commune_code)):
        raise not_found("household", body.household_id)
    facts = await _facts(session, household=household, programme=programme, group_id=body.group_id)
    violations = domain.application_violations(programme=programme, amount_vnd=body.amount_vnd,
                                               term_months=body.term_months,
                                               group_id=body.group_id, facts=facts)
    if violations:
        raise violations_problem(violations)
    assert household is not None  # an unknown household is a violation
    if not household.commune_code:
        raise invalid("household_id", "unknown_commune", "eligibility has not told the household's "
                      "commune yet")
    await _refuse_if_open(session, household_id=body.household_id, programme_code=programme.code)
    await instructions.ensure_budget(session, programme=programme,
                                     commune_code=household.commune_code)
    b = tables.budget
    remaining = await session.scalar(sa.select(b.c.total_vnd - b.c.committed_vnd).where(
        b.c.programme_code == programme.code, b.c.commune_code == household.commune_code))
    if remaining is None or remaining < body.amount_vnd:
        raise invalid("amount_vnd", "budget_exhausted",
                      f"the commune's budget for {programme.code} has {remaining or 0:,} VND "
                      f"left; {body.amount_vnd:,} VND asked", remaining_vnd=remaining or 0)
    actor = actor_of(user)
    values = dict(
        id=str(uuid.uuid4()), household_id=body.household_id, programme_code=programme.code,
        kind=programme.kind, amount_vnd=body.amount_vnd,
        term_months=body.term_months if programme.is_credit else None, purpose=body.purpose,
        group_id=body.group_id if programme.is_credit else None,
        commune_code=household.commune_code,
        province_code=await province_of(session, household.commune_code),
        village=household.village, status="submitted", created_by=actor)
    try:
        async with session.begin_nested():
            row = (await session.execute(sa.insert(A).values(**values).returning(*A.c))).one()
    except IntegrityError:  # a concurrent submission won the one-open-application index
        await _refuse_if_open(session, household_id=body.household_id,
                              programme_code=programme.code)
        raise
    await session.execute(sa.insert(tables.application_status).values(
        application_id=row.id, status="submitted", actor=actor, reason=body.purpose))
    await _event(session, svc, row, type=events.APPLICATION_SUBMITTED, actor=actor)
    return row


async def _refuse_if_open(session: AsyncSession, *, household_id: str, programme_code: str) -> None:
    open_id = await session.scalar(sa.select(A.c.id).where(
        A.c.household_id == household_id, A.c.programme_code == programme_code,
        A.c.status.in_(domain.APPLICATION_OPEN)))
    if open_id is not None:
        raise invalid("programme_code", "open_application",
                      f"the household already has an open application {open_id} for "
                      f"{programme_code}", application_id=open_id)


async def _locked(session: AsyncSession, user: Principal, application_id: str) -> Any:
    row = (await session.execute(sa.select(A).where(A.c.id == application_id)
                                 .with_for_update())).first()
    if row is None or not user.covers_row(row):
        raise not_found("application", application_id)
    return row


def _wrong_status(row: Any, expected: str, action: str) -> Problem:
    return Problem(409, f"application is {row.status}; {action} needs it {expected}",
                   code="wrong_status", status_now=row.status)


async def review(session: AsyncSession, svc: Service, *, user: Principal, application_id: str,
                 decision: str, note: str) -> Any:
    """Record the savings-and-loan group's meeting: approve → reviewed, reject → rejected."""
    row = await _locked(session, user, application_id)
    if row.kind != "credit":
        raise Problem(409, "only loan applications go through a group review",
                      code="not_a_loan")
    if row.status != "submitted":
        raise _wrong_status(row, "submitted", "a group review")
    actor = actor_of(user)
    status = "reviewed" if decision == "approve" else "rejected"
    row = await record_application_status(session, application_id=row.id, status=status,
                                          actor=actor, reason=f"group meeting: {note}")
    await _event(session, svc, row, type=events.APPLICATION_REVIEWED, note=note, actor=actor)
    if status == "rejected":
        await _event(session, svc, row, type=events.APPLICATION_REJECTED, reason=note, actor=actor)
    return row


async def confirm(session: AsyncSession, svc: Service, *, user: Principal, application_id: str,
                  scheduled_date: date | None, note: str | None, credit: bool) -> tuple[Any, bool]:
    """Confirm a reviewed loan (chair) or approve livelihood support (officer): issue the
    instruction. Repeating it returns the same instruction; returns (application, created)."""
    row = await _locked(session, user, application_id)
    if (row.kind == "credit") != credit:
        raise Problem(409, "loans are confirmed by the commune chair after the group review; "
                           "livelihood support is approved by a commune officer",
                      code="wrong_action")
    done = "confirmed" if credit else "approved"
    if row.status not in ("reviewed" if credit else "submitted",):
        existing = await session.scalar(sa.select(tables.instruction.c.id).where(
            tables.instruction.c.application_id == row.id,
            tables.instruction.c.kind == "disbursement"))
        if existing is not None:
            return row, False  # a retry: the one instruction already exists
        raise _wrong_status(row, "reviewed" if credit else "submitted",
                            "confirmation" if credit else "approval")
    await _checker_is_not_a_maker(session, user, row, credit=credit)
    programme = svc.programme(row.programme_code)
    household = (await session.execute(sa.select(H).where(H.c.household_id == row.household_id))
                 ).one()
    eligible, reason = eligibility_of(household, programme)
    if not eligible:
        raise invalid("household_id", "not_eligible",
                      f"not eligible for {programme.requires_eligibility} now: {reason}")
    if scheduled_date is not None and scheduled_date < date.today():
        raise invalid("scheduled_date", "in_the_past", "must be today or later")
    actor = actor_of(user)
    row = await record_application_status(session, application_id=row.id, status=done,
                                          actor=actor, reason=note or f"{done} by {user.role}")
    await _event(session, svc, row, type=events.APPLICATION_CONFIRMED, note=note, actor=actor)
    await instructions.issue(session, svc, application=row, household=household,
                             programme=programme, scheduled_date=scheduled_date or date.today(),
                             actor=actor)
    # Last statement before commit: the budget row stays locked as briefly as possible; if it
    # cannot cover the amount, everything above rolls back with the refusal.
    if not await instructions.reserve_budget(session, programme=programme,
                                             commune_code=row.commune_code,
                                             amount_vnd=row.amount_vnd):
        raise invalid("amount_vnd", "budget_exhausted",
                      f"the commune's budget for {programme.code} cannot cover "
                      f"{row.amount_vnd:,} VND any more")
    return row, True


def subject_of(actor: str | None) -> str | None:
    """The person behind a recorded actor (`role:sub`): one person may hold several roles."""
    return None if actor is None else actor.split(":", 1)[-1]


async def _checker_is_not_a_maker(session: AsyncSession, user: Principal, row: Any, *,
                                  credit: bool) -> None:
    """Separation of duties: whoever approves a livelihood application did not submit it, and
    whoever confirms a loan neither submitted it nor recorded its group review (403
    `maker_checker`), whatever role each was acting in."""
    makers = {subject_of(row.created_by): "submitted"}
    if credit:
        s = tables.application_status
        reviewers = (await session.scalars(sa.select(s.c.actor).where(
            s.c.application_id == row.id, s.c.status == "reviewed"))).all()
        makers |= {subject_of(a): "recorded its group review" for a in reviewers}
    refuse_makers(user, makers, what="application", action="confirm" if credit else "approve")


def refuse_makers(user: Principal, makers: dict[str | None, str], *, what: str,
                  action: str) -> None:
    """403 `maker_checker` when the caller is one of the makers (subject → what they did)."""
    did = makers.get(user.sub)
    if did is not None:
        raise Problem(403, f"you {did} this {what}; another person must {action} it "
                      "(separation of duties)", code="maker_checker")


async def reject(session: AsyncSession, svc: Service, *, user: Principal, application_id: str,
                 reason: str) -> Any:
    """Refuse an application that has no instruction yet."""
    row = await _locked(session, user, application_id)
    if row.status not in ("submitted", "reviewed"):
        raise _wrong_status(row, "submitted or reviewed", "a rejection")
    actor = actor_of(user)
    row = await record_application_status(session, application_id=row.id, status="rejected",
                                          actor=actor, reason=reason)
    await _event(session, svc, row, type=events.APPLICATION_REJECTED, reason=reason, actor=actor)
    return row


async def read(session: AsyncSession, *, user: Principal, application_id: str) -> dict[str, Any]:
    """The application, its instruction and every status of both, with time and reason."""
    row = (await session.execute(sa.select(A).where(A.c.id == application_id))).first()
    if row is None or not user.covers_row(row):
        raise not_found("application", application_id)
    history = (await session.execute(
        sa.select(tables.application_status.c.status, tables.application_status.c.at,
                  tables.application_status.c.actor, tables.application_status.c.reason)
        .where(tables.application_status.c.application_id == row.id)
        .order_by(tables.application_status.c.id))).mappings().all()
    out = jsonable(row._mapping) | {"application_id": row.id,
                                    "history": [jsonable(h) for h in history]}
    out.pop("id")
    out["instruction"] = await instruction_view(session, application_id=row.id)
    return out


async def instruction_view(session: AsyncSession, *, application_id: str | None = None,
                           instruction_id: str | None = None) -> dict[str, Any] | None:
    """An instruction with its status history (None if there is none)."""
    i = tables.instruction
    where = (sa.and_(i.c.application_id == application_id, i.c.kind == "disbursement")
             if application_id else i.c.id == instruction_id)
    row = (await session.execute(sa.select(i).where(where))).first()
    if row is None:
        return None
    s = tables.instruction_status
    history = (await session.execute(
        sa.select(s.c.status, s.c.previous_status, s.c.at, s.c.source, s.c.actor, s.c.reason,
                  s.c.bank_reference, s.c.amount_vnd, s.c.occurred_at)
        .where(s.c.instruction_id == row.id).order_by(s.c.id))).mappings().all()
    out = jsonable(row._mapping) | {"instruction_id": row.id,
                                    "history": [jsonable(h) for h in history]}
    out.pop("id")
    return out


async def listing(session: AsyncSession, *, user: Principal, commune_code: str | None,
                  status: str | None, programme_code: str | None, household_id: str | None,
                  limit: int, offset: int) -> list[dict[str, Any]]:
    """Applications in the caller's scope, newest first, with their instruction status."""
    i = tables.instruction
    q = (sa.select(A, i.c.id.label("instruction_id"), i.c.status.label("instruction_status"))
         .join(i, sa.and_(i.c.application_id == A.c.id, i.c.kind == "disbursement"),
               isouter=True))
    q = q.where(scope_clause(user, A))
    for col, value in ((A.c.commune_code, commune_code), (A.c.status, status),
                       (A.c.programme_code, programme_code), (A.c.household_id, household_id)):
        if value is not None:
            q = q.where(col == value)
    rows = (await session.execute(q.order_by(A.c.created_at.desc(), A.c.id).limit(limit)
                                  .offset(offset))).mappings().all()
    out = []
    for r in rows:
        item = jsonable(r)
        item["application_id"] = item.pop("id")
        out.append(item)
    return out
