"""Instructions: issue (idempotent), send to the partner through the outbox, move along the
lifecycle, cancel, reschedule, and the dispatcher that sends instructions whose day has come."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import domain, events, tables
from services.disbursement.handlers.common import (
    Service,
    instruction_id_for,
    invalid,
    record_application_status,
)
from shared.auth import Principal, actor_of
from shared.envelope import Envelope, utcnow
from shared.problems import Problem, not_found

INS = tables.instruction
# Application status that follows each final instruction status.
APPLICATION_AFTER = {"settled": "disbursed", "rejected": "not_disbursed", "failed": "not_disbursed",
                     "cancelled": "cancelled", "reversed": "reversed"}
# Restructuring status that follows a restructure instruction that will never be applied (its
# `settled` applies the new schedule: handlers/restructurings.py).
RESTRUCTURING_AFTER = {"rejected": "not_applied", "failed": "not_applied",
                       "cancelled": "cancelled"}


def issued_payload(row: Any) -> dict[str, Any]:
    """The bank-facing message of an instruction (no national ID; a beneficiary reference); a
    `restructure` instruction carries the loan's new schedule."""
    restructure = (events.RestructureScheduleV1.model_validate(row.restructure)
                   if row.kind == "restructure" else None)
    return events.InstructionIssuedV1(
        instruction_id=row.id, application_id=row.application_id,
        programme_code=row.programme_code, beneficiary_reference=row.beneficiary_reference,
        payee_name=row.payee_name, commune_code=row.commune_code,
        transaction_point=row.transaction_point, amount_vnd=row.amount_vnd, currency="VND",
        purpose=row.purpose, term_months=row.term_months, annual_rate_pct=row.annual_rate_pct,
        scheduled_date=row.scheduled_date, partner=row.partner, kind=row.kind,
        restructure=restructure,
    ).model_dump(mode="json")


async def reserve_budget(session: AsyncSession, *, programme: domain.Programme, commune_code: str,
                         amount_vnd: int) -> bool:
    """Atomically commit `amount_vnd` of the commune's budget; False when it does not fit."""
    await ensure_budget(session, programme=programme, commune_code=commune_code)
    b = tables.budget
    done = await session.execute(
        sa.update(b).where(b.c.programme_code == programme.code, b.c.commune_code == commune_code,
                           b.c.total_vnd - b.c.committed_vnd >= amount_vnd)
        .values(committed_vnd=b.c.committed_vnd + amount_vnd, updated_at=sa.func.now())
        .returning(b.c.committed_vnd))
    return done.first() is not None


async def release_budget(session: AsyncSession, *, programme_code: str, commune_code: str,
                         amount_vnd: int) -> None:
    """Give a reservation back (instruction rejected, failed, cancelled or reversed)."""
    b = tables.budget
    await session.execute(
        sa.update(b).where(b.c.programme_code == programme_code, b.c.commune_code == commune_code)
        .values(committed_vnd=sa.func.greatest(b.c.committed_vnd - amount_vnd, 0),
                updated_at=sa.func.now()))


async def ensure_budget(session: AsyncSession, *, programme: domain.Programme,
                        commune_code: str) -> None:
    """A commune used for the first time gets the programme's default budget."""
    await session.execute(
        pg_insert(tables.budget).values(programme_code=programme.code, commune_code=commune_code,
                                        total_vnd=programme.default_commune_budget_vnd,
                                        source="default")
        .on_conflict_do_nothing())


def _household_key(household_id: str) -> sa.ColumnElement[int]:
    return sa.func.hashtextextended(f"disbursement.household:{household_id}", 0)


async def lock_household(session: AsyncSession, household_id: str) -> None:
    """Serialise with every other transaction that issues, holds, releases or sends for the
    household (until commit): under READ COMMITTED an unserialised hold and issue miss each
    other. Take it before locking any of the household's instructions."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_household_key(household_id))))


async def try_lock_household(session: AsyncSession, household_id: str) -> bool:
    """`lock_household` without waiting: False while another transaction holds it."""
    return bool(await session.scalar(
        sa.select(sa.func.pg_try_advisory_xact_lock(_household_key(household_id)))))


async def household_on_hold(session: AsyncSession, household_id: str) -> bool:
    """Whether a complaint hold is active for the household."""
    h = tables.hold
    active = await session.scalar(sa.select(sa.func.count()).select_from(h).where(
        h.c.household_id == household_id, h.c.released_at.is_(None)))
    return bool(active)


def due(svc: Service, scheduled: date) -> bool:
    """Whether the instruction's day is inside the window in which banks receive instructions."""
    return scheduled <= date.today() + timedelta(days=svc.settings.dispatch_ahead_days)


async def set_status(session: AsyncSession, svc: Service, row: Any, *, status: str, source: str,
                     reason: str | None = None, actor: str | None = None,
                     causation: Envelope | None = None, bank_reference: str | None = None,
                     amount_vnd: int | None = None, occurred_at: Any = None,
                     event_id: str | None = None, extra: dict[str, Any] | None = None) -> Any:
    """Move an instruction to `status`: row, history, application, budget and event together."""
    previous = row.status
    changed = events.InstructionStatusChangedV1.model_validate({
        "instruction_id": row.id, "application_id": row.application_id,
        "household_id": row.household_id, "status": status, "previous_status": previous,
        "reason": reason, "bank_reference": bank_reference, "amount_vnd": amount_vnd,
        "occurred_at": occurred_at or utcnow(), "kind": row.kind})
    env = svc.outbox.new(type=events.INSTRUCTION_STATUS_CHANGED,
                         data=changed.model_dump(mode="json"), subject=row.household_id,
                         causation=causation)
    values: dict[str, Any] = {"status": status, "updated_at": sa.func.now(), **(extra or {})}
    if status == "sent":  # the bank's answers hang under this event on the timeline
        values.update(sent_at=sa.func.now(), sent_event_id=env.id)
    if bank_reference:
        values["bank_reference"] = bank_reference
    row = (await session.execute(sa.update(INS).where(INS.c.id == row.id).values(**values)
                                 .returning(*INS.c))).one()
    await session.execute(sa.insert(tables.instruction_status).values(
        instruction_id=row.id, status=status, previous_status=previous, source=source,
        actor=actor, reason=reason, bank_reference=bank_reference, amount_vnd=amount_vnd,
        occurred_at=occurred_at, event_id=event_id))
    # A restructure instruction moves no money: no budget, the loan's application stays disbursed.
    if status in domain.RELEASES_BUDGET and row.kind == "disbursement":
        await release_budget(session, programme_code=row.programme_code,
                             commune_code=row.commune_code, amount_vnd=row.amount_vnd)
    if status in RESTRUCTURING_AFTER and row.kind == "restructure":
        r = tables.restructuring
        await session.execute(sa.update(r).where(r.c.id == row.restructuring_id).values(
            status=RESTRUCTURING_AFTER[status], updated_at=sa.func.now()))
    if status in APPLICATION_AFTER and row.kind == "disbursement":
        await record_application_status(session, application_id=row.application_id,
                                        status=APPLICATION_AFTER[status], actor=actor,
                                        reason=reason or f"instruction {status}")
    await svc.outbox.add(session, events.TOPIC, env)
    return row


async def send(session: AsyncSession, svc: Service, row: Any, *, causation: Envelope | None = None,
               actor: str | None = None) -> Any:
    """Issue the bank message: written to the partner's topic through the outbox, status `sent`;
    an instruction whose household is on hold goes `on_hold` instead. The caller holds the
    household's lock, so no hold can commit unseen between this check and the commit."""
    if await household_on_hold(session, row.household_id):
        return await set_status(session, svc, row, status="on_hold", source="hold", actor=actor,
                                causation=causation,
                                reason="a complaint hold is active for this household")
    # Keyed by the instruction id: a bank sees no internal household id (the beneficiary
    # reference is a keyed hash), and one instruction's messages stay in order.
    await svc.emit(session, events.instructions_topic(row.partner), type=events.INSTRUCTION_ISSUED,
                   data=issued_payload(row), subject=row.id, causation=causation)
    return await set_status(session, svc, row, status="sent", source="dispatcher", actor=actor,
                            reason=f"issued to {row.partner} on disbursement.instructions."
                                   f"{row.partner}", causation=causation)


async def issue(session: AsyncSession, svc: Service, *, application: Any, household: Any,
                programme: domain.Programme, scheduled_date: date, actor: str | None) -> Any:
    """Create the application's one instruction (approved), then hold or send it as due."""
    await lock_household(session, application.household_id)
    instruction_id = instruction_id_for(application.id)
    inserted = (await session.execute(
        pg_insert(INS).values(
            id=instruction_id, application_id=application.id, household_id=application.household_id,
            programme_code=programme.code, partner=programme.partner,
            commune_code=application.commune_code, province_code=application.province_code,
            beneficiary_reference=domain.beneficiary_reference(
                key=svc.settings.beneficiary_reference_key, household_id=application.household_id),
            payee_name=household.head_name or "(unknown)",
            transaction_point=svc.settings.transaction_point_format.format(
                commune_code=application.commune_code),
            amount_vnd=application.amount_vnd, purpose=application.purpose,
            term_months=application.term_months if programme.is_credit else None,
            annual_rate_pct=programme.annual_rate_pct if programme.is_credit else None,
            scheduled_date=scheduled_date, status="approved",
        ).on_conflict_do_nothing().returning(*INS.c))).first()
    if inserted is None:  # the unique application id already produced it
        return (await session.execute(sa.select(INS).where(
            INS.c.application_id == application.id, INS.c.kind == "disbursement"))).one()
    return await approved(session, svc, inserted, actor=actor, reason=(
        f"application {application.id} {'confirmed' if programme.is_credit else 'approved'}"))


async def approved(session: AsyncSession, svc: Service, inserted: Any, *, actor: str | None,
                   reason: str) -> Any:
    """A newly inserted instruction: its first status and events, then hold or send it as due."""
    await session.execute(sa.insert(tables.instruction_status).values(
        instruction_id=inserted.id, status="approved", source="api", actor=actor, reason=reason))
    issued = issued_payload(inserted) | {"household_id": inserted.household_id}
    await svc.emit(session, events.TOPIC, type=events.INSTRUCTION_ISSUED, data=issued,
                   subject=inserted.household_id)
    await svc.emit(session, events.TOPIC, type=events.INSTRUCTION_STATUS_CHANGED,
                   data=events.InstructionStatusChangedV1(
                       instruction_id=inserted.id, application_id=inserted.application_id,
                       household_id=inserted.household_id, status="approved",
                       occurred_at=utcnow(), kind=inserted.kind).model_dump(mode="json"),
                   subject=inserted.household_id)
    if await household_on_hold(session, inserted.household_id):
        return await set_status(session, svc, inserted, status="on_hold", source="hold",
                                reason="a complaint hold is active for this household")
    if due(svc, inserted.scheduled_date):
        return await send(session, svc, inserted, actor=actor)
    return inserted


async def locked(session: AsyncSession, user: Principal, instruction_id: str) -> Any:
    """The instruction, locked for update, or 404 (also outside the caller's scope)."""
    row = (await session.execute(sa.select(INS).where(INS.c.id == instruction_id)
                                 .with_for_update())).first()
    if row is None or not user.covers_row(row):
        raise not_found("instruction", instruction_id)
    return row


async def cancel(session: AsyncSession, svc: Service, *, user: Principal, instruction_id: str,
                 reason: str) -> Any:
    """Cancel before the bank message is issued; afterwards only the bank can reject it."""
    row = await locked(session, user, instruction_id)
    if not domain.may_cancel(row.status):
        raise Problem(409, f"instruction is {row.status}: only an instruction not yet sent "
                           "(approved or on_hold) can be cancelled", code="not_cancellable")
    return await set_status(session, svc, row, status="cancelled", source="api",
                            actor=actor_of(user), reason=reason)


async def reschedule(session: AsyncSession, svc: Service, *, user: Principal, instruction_id: str,
                     scheduled_date: date) -> Any:
    """Move the disbursement day of an unsent instruction; send it if the day has come."""
    household_id = await session.scalar(sa.select(INS.c.household_id)
                                        .where(INS.c.id == instruction_id))
    if household_id is not None:  # before the row lock: the order the hold handlers take them
        await lock_household(session, household_id)
    row = await locked(session, user, instruction_id)
    if row.status not in ("approved", "on_hold"):
        raise Problem(409, f"instruction is {row.status}: only an unsent instruction can be "
                           "rescheduled", code="not_reschedulable")
    if scheduled_date < date.today():
        raise invalid("scheduled_date", "in_the_past", "must be today or later")
    row = (await session.execute(sa.update(INS).where(INS.c.id == row.id)
                                 .values(scheduled_date=scheduled_date, updated_at=sa.func.now())
                                 .returning(*INS.c))).one()
    await session.execute(sa.insert(tables.instruction_status).values(
        instruction_id=row.id, status=row.status, previous_status=row.status, source="api",
        actor=actor_of(user), reason=f"rescheduled to {scheduled_date.isoformat()}"))
    if row.status == "approved" and due(svc, row.scheduled_date):
        row = await send(session, svc, row, actor=actor_of(user))
    return row


async def dispatch_due(session: AsyncSession, svc: Service, *, limit: int = 500) -> int:
    """Send approved instructions whose day entered the window (several processes may run this);
    a household whose hold is being handled right now waits for the next round."""
    rows = (await session.execute(
        sa.select(INS).where(INS.c.status == "approved",
                           INS.c.scheduled_date <= date.today()
                           + timedelta(days=svc.settings.dispatch_ahead_days))
        .order_by(INS.c.scheduled_date).limit(limit).with_for_update(skip_locked=True))).all()
    sent = 0
    for row in rows:
        # Never wait here: this transaction holds instruction rows, which hold handling locks
        # after the household; waiting would deadlock with it.
        if await try_lock_household(session, row.household_id):
            sent += (await send(session, svc, row)).status == "sent"
    return sent
