"""Events from elsewhere: eligibility (the projection), supervision (holds: serialised per
household, commutative), bank partners (statuses and repayments: idempotent, monotonic, refused
transitions dead-lettered; a repayment counts once per bank reference)."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import domain, events, tables
from services.disbursement.handlers import instructions, restructurings
from services.disbursement.handlers.common import Service
from services.eligibility import events as eligibility_events
from services.supervision import events as supervision_events
from shared.consumer import BatchContext, DeadLetter, EventContext
from shared.envelope import Envelope

INS = tables.instruction


_COALESCED = ("commune_code", "village", "head_name", "category", "status")


async def on_eligibility(svc: Service, ctx: BatchContext) -> None:
    """Eligibility's facts, set-based: each household's latest programme list (one upsert; an
    older decision never overwrites a newer), the communes' provinces (one insert) and the
    households a shock affected (one insert; a repeat is a no-op)."""
    h = tables.household
    latest: dict[str, dict[str, Any]] = {}
    communes: dict[str, str] = {}
    exposures: dict[tuple[str, str], dict[str, Any]] = {}
    for item in ctx.items:
        if isinstance(item.payload, eligibility_events.ClassificationDecidedV1):
            communes[item.payload.commune_code] = item.payload.province_code
            continue
        if isinstance(item.payload, eligibility_events.ReviewOpenedV1):
            r = item.payload
            exposures[(r.household_id, r.shock_id)] = {
                "household_id": r.household_id, "shock_id": r.shock_id,
                "shock_type": r.shock_type, "shock_title": r.shock_title,
                "occurred_on": r.occurred_on, "commune_code": r.commune_code,
                "review_id": r.review_id, "event_id": item.event.id}
            continue
        p: eligibility_events.ProgramEligibilityChangedV1 = item.payload
        programs = {s.program_code: {"eligible": s.eligible, "reason": s.reason}
                    for s in p.programs}
        values = {"household_id": p.household_id, "commune_code": p.commune_code,
                  "village": p.village, "head_name": p.head_name, "category": p.category,
                  "status": p.status, "programs": programs, "as_of": p.as_of,
                  "event_id": item.event.id}
        kept = latest.get(p.household_id)
        if kept is None:
            latest[p.household_id] = values
        elif kept["as_of"] <= values["as_of"]:
            latest[p.household_id] = values | {c: values[c] if values[c] is not None else kept[c]
                                               for c in _COALESCED}
    if communes:
        await ctx.session.execute(pg_insert(tables.commune_area).on_conflict_do_nothing(),
                                  [{"commune_code": c, "province_code": p}
                                   for c, p in sorted(communes.items())])
    if exposures:
        await ctx.session.execute(pg_insert(tables.shock_exposure).on_conflict_do_nothing(),
                                  [exposures[k] for k in sorted(exposures)])
    if not latest:
        return
    stmt = pg_insert(h)
    excluded = stmt.excluded
    await ctx.session.execute(stmt.on_conflict_do_update(
        index_elements=[h.c.household_id],
        set_={"programs": excluded.programs, "as_of": excluded.as_of,
              "event_id": excluded.event_id, "updated_at": sa.func.now(),
              **{c: sa.func.coalesce(excluded[c], h.c[c]) for c in _COALESCED}},
        where=h.c.as_of <= excluded.as_of), list(latest.values()))


async def on_hold_requested(svc: Service, ctx: EventContext,
                            p: supervision_events.HoldRequestedV1) -> None:
    """A complaint hold: the household's unsent instructions go on_hold (new ones are born so).
    A hold whose release came first stays released."""
    session = ctx.session
    h = tables.hold
    if p.commune_code is not None:  # a complaint of one commune holds only its own households
        known = await session.scalar(sa.select(tables.household.c.commune_code).where(
            tables.household.c.household_id == p.household_id))
        if known is not None and known != p.commune_code:
            raise DeadLetter(f"household {p.household_id} is in commune {known}, not in "
                             f"{p.commune_code}, the complaint's")
    await instructions.lock_household(session, p.household_id)
    released_at = (await session.execute(
        pg_insert(h).values(complaint_id=p.complaint_id, household_id=p.household_id,
                            reason=p.reason, actor=p.actor)
        .on_conflict_do_update(index_elements=[h.c.complaint_id, h.c.household_id],
                               set_={"reason": p.reason, "actor": p.actor})
        .returning(h.c.released_at))).scalar_one()
    if released_at is not None:  # the release's tombstone: this request is already over
        return
    rows = (await session.execute(sa.select(INS).where(INS.c.household_id == p.household_id)
                                  .with_for_update())).all()
    held = []
    for row in rows:
        if row.status == "approved":
            await instructions.set_status(session, svc, row, status="on_hold", source="hold",
                                          actor=p.actor, causation=ctx.event,
                                          reason=f"complaint {p.complaint_id}: {p.reason}")
            held.append(row.id)
    in_flight = [r.id for r in rows if r.status in ("sent", "accepted")]
    await svc.emit(session, events.TOPIC, type=events.HOLD_APPLIED, subject=p.household_id,
                   causation=ctx.event, data=events.HoldEventV1(
                       household_id=p.household_id, complaint_id=p.complaint_id,
                       instruction_ids=held, already_sent_instruction_ids=in_flight,
                       reason=p.reason).model_dump(mode="json"))


async def on_hold_released(svc: Service, ctx: EventContext,
                           p: supervision_events.HoldReleasedV1) -> None:
    """Release one complaint's hold; when none is left, held instructions resume (and are sent
    if their day has come). A release that overtakes its request is kept as a tombstone, so the
    request, when it comes, holds nothing."""
    session = ctx.session
    h = tables.hold
    await instructions.lock_household(session, p.household_id)
    await session.execute(
        pg_insert(h).values(complaint_id=p.complaint_id, household_id=p.household_id,
                            released_at=sa.func.now())
        .on_conflict_do_update(index_elements=[h.c.complaint_id, h.c.household_id],
                               set_={"released_at": sa.func.now()},
                               where=h.c.released_at.is_(None)))
    resumed: list[str] = []
    if not await instructions.household_on_hold(session, p.household_id):
        rows = (await session.execute(sa.select(INS).where(INS.c.household_id == p.household_id,
                                                         INS.c.status == "on_hold")
                                      .with_for_update())).all()
        for row in rows:
            row = await instructions.set_status(session, svc, row, status="approved",
                                                source="hold", actor=p.actor, causation=ctx.event,
                                                reason=f"hold of complaint {p.complaint_id} released")
            resumed.append(row.id)
            if instructions.due(svc, row.scheduled_date):
                await instructions.send(session, svc, row, causation=ctx.event)
    await svc.emit(session, events.TOPIC, type=events.HOLD_RELEASED, subject=p.household_id,
                   causation=ctx.event, data=events.HoldEventV1(
                       household_id=p.household_id, complaint_id=p.complaint_id,
                       instruction_ids=resumed).model_dump(mode="json"))


async def on_bank_status(svc: Service, ctx: EventContext,
                         p: events.BankInstructionStatusV1) -> None:
    """Apply a partner's status if it is the next legal step; a repeat is a no-op; anything else
    is dead-lettered with the reason and never applied."""
    session = ctx.session
    partner = ctx.topic.removeprefix("disbursement.status.")
    row = (await session.execute(sa.select(INS).where(INS.c.id == p.instruction_id)
                                 .with_for_update())).first()
    if row is None:
        raise DeadLetter(f"unknown instruction {p.instruction_id}")
    if row.partner != partner:
        raise DeadLetter(f"instruction {row.id} belongs to partner {row.partner}, "
                         f"not {partner}")
    history: list[str] = []
    if p.status not in domain.BANK_TRANSITIONS.get(row.status, ()):  # the common case needs none
        s = tables.instruction_status
        history = list((await session.scalars(
            sa.select(s.c.status).where(s.c.instruction_id == row.id))).all())
    verdict = domain.judge_bank_status(current=row.status, incoming=p.status, history=history,
                                       is_loan=row.term_months is not None)
    if verdict.action == "refuse":
        raise DeadLetter(f"instruction {row.id}: {verdict.reason}")
    if row.kind == "restructure" and p.status == "reversed" and verdict.action == "apply":
        # An applied schedule is undone by a new restructuring, not by a bank reversal.
        raise DeadLetter(f"instruction {row.id}: a restructure instruction cannot be reversed")
    await session.execute(pg_insert(tables.bank_message).values(
        event_id=ctx.event.id, instruction_id=row.id, status=p.status, verdict=verdict.action,
        amount_vnd=p.amount_vnd, bank_reference=p.bank_reference, occurred_at=p.occurred_at)
        .on_conflict_do_nothing())
    if p.status == "settled" and verdict.action == "duplicate":
        await session.execute(sa.update(INS).where(INS.c.id == row.id).values(
            settled_messages=INS.c.settled_messages + 1))
    if verdict.action == "duplicate":
        return
    if verdict.action == "repayment":
        await _repayment(session, svc, ctx, row, p, partner)
        return
    received = await received_message(svc, ctx, row, p, partner)
    reason = p.reason_code or f"{p.status} by {partner}"
    settled = {"settled_messages": INS.c.settled_messages + 1,
               "settled_amount_vnd": p.amount_vnd if p.amount_vnd is not None
               else row.amount_vnd} if p.status == "settled" else {}
    row = await instructions.set_status(session, svc, row, status=p.status, source="bank",
                                        reason=reason, actor=f"partner:{partner}",
                                        causation=received, bank_reference=p.bank_reference,
                                        amount_vnd=p.amount_vnd, occurred_at=p.occurred_at,
                                        event_id=ctx.event.id, extra=settled)
    if row.kind == "restructure":
        await restructurings.on_instruction_status(session, svc, instruction=row,
                                                   causation=received)
    elif p.status == "settled" and row.term_months is not None:
        await _open_loan(session, row, disbursed_on=p.occurred_at.date(),
                         principal_vnd=p.amount_vnd or row.amount_vnd)
    if p.status == "reversed" and row.kind == "disbursement":
        await session.execute(sa.update(tables.loan).where(tables.loan.c.instruction_id == row.id)
                              .values(status="reversed", updated_at=sa.func.now()))


async def received_message(svc: Service, ctx: EventContext, row: Any,
                           p: events.BankInstructionStatusV1, partner: str) -> Envelope:
    """The partner's message on the household's record (`partner:<id>`), caused by the
    instruction's `sent` status change: the timeline's tree reaches the bank without an orphan,
    and an auditor sees which bank message settled a loan."""
    sent = Envelope(type=events.INSTRUCTION_STATUS_CHANGED, source=events.SOURCE, data={},
                    id=row.sent_event_id or ctx.event.id,
                    correlation_id=ctx.event.correlation_id, traceparent=ctx.event.traceparent,
                    tracestate=ctx.event.tracestate)
    data = events.BankMessageReceivedV1(
        instruction_id=row.id, application_id=row.application_id, household_id=row.household_id,
        partner=partner, status=p.status, message_id=ctx.event.id,
        bank_reference=p.bank_reference, amount_vnd=p.amount_vnd, reason_code=p.reason_code,
        occurred_at=p.occurred_at, actor=f"partner:{partner}", kind=row.kind)
    return await svc.emit(ctx.session, events.TOPIC, type=events.BANK_MESSAGE_RECEIVED,
                          subject=row.household_id, causation=sent,
                          data=data.model_dump(mode="json"))


async def _open_loan(session: AsyncSession, row: Any, *, disbursed_on: date,
                     principal_vnd: int) -> None:
    plan = domain.schedule(principal_vnd=principal_vnd, annual_rate_pct=row.annual_rate_pct,
                           term_months=row.term_months, disbursed_on=disbursed_on)
    await session.execute(pg_insert(tables.loan).values(
        instruction_id=row.id, application_id=row.application_id, household_id=row.household_id,
        programme_code=row.programme_code, commune_code=row.commune_code,
        province_code=row.province_code, principal_vnd=principal_vnd,
        annual_rate_pct=row.annual_rate_pct, term_months=row.term_months,
        disbursed_on=disbursed_on, maturity_date=plan[-1].due_date,
        outstanding_principal_vnd=principal_vnd, next_due_date=plan[0].due_date,
    ).on_conflict_do_nothing())


async def _repayment(session: AsyncSession, svc: Service, ctx: EventContext, row: Any,
                     p: events.BankInstructionStatusV1, partner: str) -> None:
    if not p.amount_vnd or p.amount_vnd <= 0:
        raise DeadLetter(f"instruction {row.id}: repayment_received without a positive amount_vnd")
    loan_t = tables.loan
    loan = (await session.execute(sa.select(loan_t).where(loan_t.c.instruction_id == row.id)
                                  .with_for_update())).first()
    if loan is None:
        raise DeadLetter(f"instruction {row.id}: repayment_received but no loan is open")
    recorded = (await session.execute(pg_insert(tables.repayment).values(
        instruction_id=row.id, amount_vnd=p.amount_vnd, bank_reference=p.bank_reference,
        occurred_at=p.occurred_at, event_id=ctx.event.id)
        .on_conflict_do_nothing().returning(tables.repayment.c.id))).first()
    if recorded is None:  # the partner sent this repayment again, under a new event id
        await session.execute(sa.update(tables.bank_message)
                              .where(tables.bank_message.c.event_id == ctx.event.id)
                              .values(verdict="duplicate"))
        return
    received = await received_message(svc, ctx, row, p, partner)
    repaid = loan.repaid_vnd + p.amount_vnd
    position = domain.loan_position(
        instalments=domain.schedule(principal_vnd=loan.principal_vnd,
                                    annual_rate_pct=loan.annual_rate_pct,
                                    term_months=loan.term_months, disbursed_on=loan.disbursed_on,
                                    frozen_from=loan.interest_frozen_from,
                                    frozen_until=loan.interest_frozen_until),
        repaid_vnd=repaid, annual_rate_pct=loan.annual_rate_pct, today=date.today())
    await session.execute(sa.update(loan_t).where(loan_t.c.instruction_id == row.id).values(
        repaid_vnd=repaid, outstanding_principal_vnd=position.outstanding_principal_vnd,
        next_due_date=position.next_due_date,
        status="repaid" if position.next_due_date is None else "active",
        updated_at=sa.func.now()))
    await svc.emit(session, events.TOPIC, type=events.REPAYMENT_RECORDED, subject=row.household_id,
                   causation=received, data=events.RepaymentRecordedV1(
                       instruction_id=row.id, household_id=row.household_id,
                       amount_vnd=p.amount_vnd, repaid_vnd=repaid,
                       outstanding_principal_vnd=position.outstanding_principal_vnd,
                       bank_reference=p.bank_reference,
                       occurred_at=p.occurred_at).model_dump(mode="json"))
