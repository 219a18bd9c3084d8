"""Loan restructuring after a shock: request (the loan settled and outstanding, the household
exposed to the shock, months within the option), group review, the commune chair's confirmation
(maker ≠ checker; issues the one `restructure` instruction), the partner's answer applied to the
loan's schedule, reads."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import domain, events, tables
from services.disbursement.handlers import instructions
from services.disbursement.handlers.applications import (
    instruction_view,
    refuse_makers,
    subject_of,
)
from services.disbursement.handlers.common import (
    INSTRUCTION_NAMESPACE,
    Service,
    invalid,
    jsonable,
    violations_problem,
)
from services.disbursement.schemas import RestructuringCreate
from services.eligibility import events as eligibility_events
from shared.auth import Principal, actor_of, scope_clause
from shared.envelope import Envelope
from shared.outbox import CORRELATION_ID
from shared.problems import Problem, not_found

R = tables.restructuring
L = tables.loan
INS = tables.instruction


def instruction_id_for(restructuring_id: str) -> str:
    """The restructure instruction's id, derived from the restructuring: a retry names one."""
    return str(uuid.uuid5(INSTRUCTION_NAMESPACE, f"restructure:{restructuring_id}"))


def option_of(svc: Service, code: str) -> domain.RestructuringOption:
    """A restructuring option by code, or 422 naming the field."""
    try:
        return svc.options[code]
    except KeyError:
        raise invalid("option", "unknown_option",
                      f"unknown option {code!r}; one of {', '.join(svc.options)}") from None


async def _event(session: AsyncSession, svc: Service, row: Any, *, type: str,
                 causation: Envelope | None = None, **extra: Any) -> None:
    data = events.RestructuringEventV1(
        restructuring_id=row.id, loan_instruction_id=row.loan_instruction_id,
        household_id=row.household_id, programme_code=row.programme_code,
        shock_id=row.shock_id, option=row.option, months=row.months, status=row.status,
        reason=row.reason, new_term_months=row.new_term_months,
        new_maturity_date=row.new_maturity_date, interest_frozen_from=row.interest_frozen_from,
        interest_frozen_until=row.interest_frozen_until, **extra)
    await svc.emit(session, events.TOPIC, type=type, subject=row.household_id,
                   causation=causation, data=data.model_dump(mode="json", exclude_none=True))


async def request(session: AsyncSession, svc: Service, *, user: Principal,
                  loan_instruction_id: str, body: RestructuringCreate) -> Any:
    """Record a restructuring request; 404 outside the caller's scope, 409 for a loan not settled
    or already being restructured, 422 naming the field for every other broken rule."""
    option = option_of(svc, body.option)
    loan = (await session.execute(sa.select(L).where(L.c.instruction_id == loan_instruction_id)
                                  .with_for_update())).first()
    if loan is None:
        ins = (await session.execute(sa.select(INS).where(INS.c.id == loan_instruction_id))
               ).first()
        if ins is None or not user.covers_row(ins) or ins.term_months is None:
            raise not_found("loan", loan_instruction_id)
        raise Problem(409, f"instruction is {ins.status}: only a settled loan can be restructured",
                      code="loan_not_settled", status_now=ins.status)
    if not user.covers_row(loan):
        raise not_found("loan", loan_instruction_id)
    x = tables.shock_exposure
    exposure = (await session.execute(sa.select(x.c.event_id).where(
        x.c.household_id == loan.household_id, x.c.shock_id == body.shock_id))).first()
    violations = domain.request_violations(
        option=option, months=body.months, loan_status=loan.status,
        outstanding_principal_vnd=loan.outstanding_principal_vnd, exposed=exposure is not None,
        shock_id=body.shock_id)
    if violations:
        raise violations_problem(violations)
    await _refuse_if_open(session, loan_instruction_id=loan.instruction_id)
    group_id = await session.scalar(sa.select(tables.application.c.group_id)
                                    .where(tables.application.c.id == loan.application_id))
    values = dict(
        id=str(uuid.uuid4()), loan_instruction_id=loan.instruction_id,
        application_id=loan.application_id, household_id=loan.household_id,
        programme_code=loan.programme_code, commune_code=loan.commune_code,
        province_code=loan.province_code, group_id=group_id, shock_id=body.shock_id,
        option=option.code, months=body.months, reason=body.reason, status="requested",
        created_by=actor_of(user))
    try:
        async with session.begin_nested():
            row = (await session.execute(sa.insert(R).values(**values).returning(*R.c))).one()
    except IntegrityError:  # a concurrent request won the one-open-restructuring index
        await _refuse_if_open(session, loan_instruction_id=loan.instruction_id)
        raise
    # Caused by the review the shock opened: on the timeline's tree the request hangs under it
    # (shock → review → restructuring), in the officer's request's correlation and trace.
    review = Envelope(type=eligibility_events.REVIEW_OPENED, source=eligibility_events.SOURCE,
                      data={}, id=exposure.event_id, correlation_id=CORRELATION_ID.get()
                      ) if exposure is not None and exposure.event_id else None
    await _event(session, svc, row, type=events.RESTRUCTURING_REQUESTED, actor=row.created_by,
                 causation=review)
    return row


async def _refuse_if_open(session: AsyncSession, *, loan_instruction_id: str) -> None:
    open_id = await session.scalar(sa.select(R.c.id).where(
        R.c.loan_instruction_id == loan_instruction_id, R.c.status.in_(domain.restructuring.OPEN)))
    if open_id is not None:
        raise Problem(409, f"the loan already has a restructuring in progress ({open_id})",
                      code="open_restructuring", restructuring_id=open_id)


async def _locked(session: AsyncSession, user: Principal, restructuring_id: str) -> Any:
    row = (await session.execute(sa.select(R).where(R.c.id == restructuring_id)
                                 .with_for_update())).first()
    if row is None or not user.covers_row(row):
        raise not_found("restructuring", restructuring_id)
    return row


def _wrong_status(row: Any, expected: str, action: str) -> Problem:
    return Problem(409, f"restructuring is {row.status}; {action} needs it {expected}",
                   code="wrong_status", status_now=row.status)


async def _set(session: AsyncSession, row_id: str, **values: Any) -> Any:
    return (await session.execute(sa.update(R).where(R.c.id == row_id)
                                  .values(updated_at=sa.func.now(), **values)
                                  .returning(*R.c))).one()


async def review(session: AsyncSession, svc: Service, *, user: Principal, restructuring_id: str,
                 decision: str, note: str) -> Any:
    """Record the savings-and-loan group's meeting: approve → reviewed, reject → rejected."""
    row = await _locked(session, user, restructuring_id)
    if row.status != "requested":
        raise _wrong_status(row, "requested", "a group review")
    actor = actor_of(user)
    row = await _set(session, row.id, status="reviewed" if decision == "approve" else "rejected",
                     reviewed_by=actor, review_note=note)
    await _event(session, svc, row, type=events.RESTRUCTURING_REVIEWED, decision=decision,
                 note=note, actor=actor)
    return row


async def confirm(session: AsyncSession, svc: Service, *, user: Principal, restructuring_id: str,
                  note: str | None) -> tuple[Any, bool]:
    """The commune chair confirms a reviewed restructuring: the new schedule is fixed and the one
    `restructure` instruction issued to the loan's partner. A retry returns the same; returns
    (restructuring, created)."""
    row = await _locked(session, user, restructuring_id)
    if row.status != "reviewed":
        existing = await session.scalar(sa.select(INS.c.id)
                                        .where(INS.c.restructuring_id == row.id))
        if existing is not None:
            return row, False  # a retry: the one instruction already exists
        raise _wrong_status(row, "reviewed", "confirmation")
    refuse_makers(user, {subject_of(row.created_by): "requested",
                         subject_of(row.reviewed_by): "recorded the group review of"},
                  what="restructuring", action="confirm")
    loan = (await session.execute(sa.select(L).where(L.c.instruction_id == row.loan_instruction_id)
                                  .with_for_update())).one()
    if loan.status != "active" or loan.outstanding_principal_vnd <= 0:
        raise Problem(409, f"the loan is {loan.status} now: nothing left to restructure",
                      code="loan_not_outstanding", status_now=loan.status)
    plan = domain.new_schedule(option=row.option, months=row.months,
                               term_months=loan.term_months, disbursed_on=loan.disbursed_on,
                               maturity_date=loan.maturity_date, today=date.today())
    actor = actor_of(user)
    row = await _set(session, row.id, status="confirmed", confirmed_by=actor,
                     new_term_months=plan.term_months, new_maturity_date=plan.maturity_date,
                     interest_frozen_from=plan.interest_frozen_from,
                     interest_frozen_until=plan.interest_frozen_until)
    instruction = await _issue(session, svc, row=row, loan=loan, actor=actor)
    await _event(session, svc, row, type=events.RESTRUCTURING_CONFIRMED, note=note, actor=actor,
                 instruction_id=instruction.id)
    return row, True


async def _issue(session: AsyncSession, svc: Service, *, row: Any, loan: Any,
                 actor: str | None) -> Any:
    """The `restructure` instruction: to the loan's partner, amount 0, the new schedule."""
    disbursed = (await session.execute(sa.select(INS).where(INS.c.id == loan.instruction_id))
                 ).one()
    await instructions.lock_household(session, row.household_id)
    schedule = events.RestructureScheduleV1(
        loan_instruction_id=loan.instruction_id, loan_bank_reference=disbursed.bank_reference,
        option=row.option, months=row.months, new_term_months=row.new_term_months,
        new_maturity_date=row.new_maturity_date, interest_frozen_from=row.interest_frozen_from,
        interest_frozen_until=row.interest_frozen_until)
    inserted = (await session.execute(pg_insert(INS).values(
        id=instruction_id_for(row.id), application_id=loan.application_id, kind="restructure",
        restructuring_id=row.id, restructure=schedule.model_dump(mode="json"),
        household_id=row.household_id, programme_code=row.programme_code,
        partner=disbursed.partner, commune_code=row.commune_code,
        province_code=row.province_code, beneficiary_reference=disbursed.beneficiary_reference,
        payee_name=disbursed.payee_name, transaction_point=disbursed.transaction_point,
        amount_vnd=0, purpose=f"restructure: {row.option} {row.months} months after shock "
                              f"{row.shock_id}",
        scheduled_date=date.today(), status="approved",
    ).on_conflict_do_nothing().returning(*INS.c))).first()
    if inserted is None:
        return (await session.execute(sa.select(INS).where(INS.c.restructuring_id == row.id))
                ).one()
    return await instructions.approved(session, svc, inserted, actor=actor,
                                       reason=f"restructuring {row.id} confirmed")


async def on_instruction_status(session: AsyncSession, svc: Service, *, instruction: Any,
                                causation: Envelope) -> None:
    """The partner's answer to a `restructure` instruction: settled applies the new schedule to
    the loan (once: a repeated status never reaches here). Rejected, failed or cancelled leave
    the loan as it was (instructions.set_status marks the restructuring)."""
    if instruction.status != "settled":
        return
    row = (await session.execute(sa.select(R).where(R.c.id == instruction.restructuring_id)
                                 .with_for_update())).one()
    loan = (await session.execute(sa.select(L).where(L.c.instruction_id == row.loan_instruction_id)
                                  .with_for_update())).one()
    frozen_from = row.interest_frozen_from or loan.interest_frozen_from
    frozen_until = row.interest_frozen_until or loan.interest_frozen_until
    position = domain.loan_position(
        instalments=domain.schedule(principal_vnd=loan.principal_vnd,
                                    annual_rate_pct=loan.annual_rate_pct,
                                    term_months=row.new_term_months,
                                    disbursed_on=loan.disbursed_on, frozen_from=frozen_from,
                                    frozen_until=frozen_until),
        repaid_vnd=loan.repaid_vnd, annual_rate_pct=loan.annual_rate_pct, today=date.today())
    await session.execute(sa.update(L).where(L.c.instruction_id == loan.instruction_id).values(
        term_months=row.new_term_months, maturity_date=row.new_maturity_date,
        interest_frozen_from=frozen_from, interest_frozen_until=frozen_until,
        next_due_date=position.next_due_date, restructured_at=sa.func.now(),
        updated_at=sa.func.now()))
    row = await _set(session, row.id, status="applied", applied_at=sa.func.now())
    await _event(session, svc, row, type=events.RESTRUCTURING_APPLIED, causation=causation,
                 instruction_id=instruction.id, actor=f"partner:{instruction.partner}")


async def read(session: AsyncSession, *, user: Principal, restructuring_id: str
               ) -> dict[str, Any]:
    """A restructuring with its instruction (and that instruction's status history)."""
    row = (await session.execute(sa.select(R).where(R.c.id == restructuring_id))).first()
    if row is None or not user.covers_row(row):
        raise not_found("restructuring", restructuring_id)
    return await _view(session, row)


async def _view(session: AsyncSession, row: Any) -> dict[str, Any]:
    out = jsonable(row._mapping) | {"restructuring_id": row.id}
    out.pop("id")
    instruction_id = await session.scalar(sa.select(INS.c.id)
                                          .where(INS.c.restructuring_id == row.id))
    out["instruction"] = (await instruction_view(session, instruction_id=instruction_id)
                          if instruction_id else None)
    return out


async def for_loan(session: AsyncSession, *, user: Principal, loan_instruction_id: str
                   ) -> list[dict[str, Any]]:
    """A loan's restructurings, oldest first (404 for a loan outside the caller's scope)."""
    loan = (await session.execute(sa.select(L).where(L.c.instruction_id == loan_instruction_id))
            ).first()
    if loan is None or not user.covers_row(loan):
        raise not_found("loan", loan_instruction_id)
    rows = (await session.execute(sa.select(R).where(R.c.loan_instruction_id == loan_instruction_id,
                                                     scope_clause(user, R))
                                  .order_by(R.c.created_at, R.c.id))).all()
    return [await _view(session, r) for r in rows]
