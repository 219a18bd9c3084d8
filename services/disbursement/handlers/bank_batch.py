"""Partners' statuses, set-based: a batch's `accepted` and `settled` answers (the happy path,
nearly every message) are applied with a constant number of statements — one locked load of
their instructions, one insert per table, one update of the instructions and one of the
applications — exactly as `inbound.on_bank_status` applies them one by one. Anything else (a
repeat, a refusal, a rejection or failure, a reversal, a repayment) goes through
`inbound.on_bank_status` itself, in its place in the batch, after what came before it is
written: the outcome is the same as handling every message alone, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import domain, events, tables
from services.disbursement.handlers import inbound
from services.disbursement.handlers.common import Service
from services.disbursement.handlers.instructions import APPLICATION_AFTER
from shared.consumer import BatchContext, Item

INS = tables.instruction
FAST = ("accepted", "settled")  # statuses with no budget, hold or repayment side effect


@dataclass
class _Run:
    """What the happy-path messages since the last slow one will write."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    instructions: dict[str, dict[str, Any]] = field(default_factory=dict)
    applications: list[dict[str, Any]] = field(default_factory=list)
    loans: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.messages)


def fast(row: Any, status: str, partner: str) -> bool:
    """Whether a message takes the set-based path: a legal next step on the happy path of an
    ordinary payment or loan of this partner (a restructure instruction changes a loan's
    schedule when settled: it goes the per-message way)."""
    return (row is not None and row.partner == partner and status in FAST
            and getattr(row, "kind", "disbursement") == "disbursement"
            and status in domain.BANK_TRANSITIONS.get(row.status, ())
            and status not in domain.RELEASES_BUDGET)


async def on_bank_statuses(svc: Service, ctx: BatchContext) -> None:
    """Apply a batch of partner statuses (see the module's docstring)."""
    session = ctx.session
    ids = sorted({item.payload.instruction_id for item in ctx.items})
    rows: dict[str, Any] = {r.id: SimpleNamespace(**r._mapping) for r in (await session.execute(
        sa.select(INS).where(INS.c.id.in_(ids)).order_by(INS.c.id).with_for_update())).all()}
    run = _Run()
    for item in ctx.items:
        p: events.BankInstructionStatusV1 = item.payload
        partner = item.topic.removeprefix("disbursement.status.")
        row = rows.get(p.instruction_id)
        if fast(row, p.status, partner):
            rows[p.instruction_id] = await _apply(svc, ctx, run, item, row, partner)
            continue
        await _write(session, run)
        run = _Run()
        await inbound.on_bank_status(svc, ctx.context(item), p)
        after = (await session.execute(sa.select(INS).where(INS.c.id == p.instruction_id))).first()
        rows[p.instruction_id] = None if after is None else SimpleNamespace(**after._mapping)
    await _write(session, run)


async def _apply(svc: Service, ctx: BatchContext, run: _Run, item: Item, row: Any,
                 partner: str) -> Any:
    """One happy-path message: its rows into the run, its two events emitted; the instruction
    as it now stands (in memory)."""
    p: events.BankInstructionStatusV1 = item.payload
    event = item.event
    run.messages.append({"event_id": event.id, "instruction_id": row.id, "status": p.status,
                         "verdict": "apply", "amount_vnd": p.amount_vnd,
                         "bank_reference": p.bank_reference, "occurred_at": p.occurred_at})
    received = await inbound.received_message(svc, ctx.context(item), row, p, partner)
    reason = p.reason_code or f"{p.status} by {partner}"
    actor = f"partner:{partner}"
    changed = events.InstructionStatusChangedV1.model_validate({
        "instruction_id": row.id, "application_id": row.application_id,
        "household_id": row.household_id, "status": p.status, "previous_status": row.status,
        "reason": reason, "bank_reference": p.bank_reference, "amount_vnd": p.amount_vnd,
        "occurred_at": p.occurred_at, "kind": row.kind})
    await svc.emit(ctx.session, events.TOPIC, type=events.INSTRUCTION_STATUS_CHANGED,
                   data=changed.model_dump(mode="json"), subject=row.household_id,
                   causation=received)
    run.statuses.append({"instruction_id": row.id, "status": p.status,
                         "previous_status": row.status, "source": "bank", "actor": actor,
                         "reason": reason, "bank_reference": p.bank_reference,
                         "amount_vnd": p.amount_vnd, "occurred_at": p.occurred_at,
                         "event_id": event.id})
    change = run.instructions.setdefault(row.id, {"id": row.id, "settled": 0,
                                                  "settled_amount_vnd": None,
                                                  "bank_reference": None})
    change["status"] = p.status
    if p.bank_reference:
        change["bank_reference"] = p.bank_reference
    after = SimpleNamespace(**(vars(row) | {
        "status": p.status, "bank_reference": p.bank_reference or row.bank_reference}))
    if p.status == "settled":
        change["settled"] += 1
        change["settled_amount_vnd"] = p.amount_vnd if p.amount_vnd is not None \
            else row.amount_vnd
        if row.term_months is not None:
            run.loans.append(_loan(row, disbursed_on=p.occurred_at.date(),
                                   principal_vnd=p.amount_vnd or row.amount_vnd))
    if p.status in APPLICATION_AFTER:
        run.applications.append({"application_id": row.application_id,
                                 "status": APPLICATION_AFTER[p.status], "actor": actor,
                                 "reason": reason})
    return after


def _loan(row: Any, *, disbursed_on: Any, principal_vnd: int) -> dict[str, Any]:
    plan = domain.schedule(principal_vnd=principal_vnd, annual_rate_pct=row.annual_rate_pct,
                           term_months=row.term_months, disbursed_on=disbursed_on)
    return {"instruction_id": row.id, "application_id": row.application_id,
            "household_id": row.household_id, "programme_code": row.programme_code,
            "commune_code": row.commune_code, "province_code": row.province_code,
            "principal_vnd": principal_vnd, "annual_rate_pct": row.annual_rate_pct,
            "term_months": row.term_months, "disbursed_on": disbursed_on,
            "maturity_date": plan[-1].due_date, "outstanding_principal_vnd": principal_vnd,
            "next_due_date": plan[0].due_date}


_UPDATE_INSTRUCTIONS = sa.text("""
    UPDATE instruction i SET status = u.status, updated_at = now(),
        bank_reference = coalesce(u.bank_reference, i.bank_reference),
        settled_messages = i.settled_messages + u.settled,
        settled_amount_vnd = CASE WHEN u.settled > 0 THEN u.settled_amount_vnd
                                  ELSE i.settled_amount_vnd END
    FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:refs AS text[]),
                CAST(:settled AS int[]), CAST(:amounts AS bigint[]))
        AS u(id, status, bank_reference, settled, settled_amount_vnd)
    WHERE i.id = u.id
""")
_UPDATE_APPLICATIONS = sa.text("""
    UPDATE application a SET status = u.status, updated_at = now()
    FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[])) AS u(id, status)
    WHERE a.id = u.id
""")


async def _write(session: AsyncSession, run: _Run) -> None:
    """The run's rows: one statement per table."""
    if not run:
        return
    await session.execute(pg_insert(tables.bank_message).on_conflict_do_nothing(),
                          run.messages)
    changes = list(run.instructions.values())
    await session.execute(_UPDATE_INSTRUCTIONS, {
        "ids": [c["id"] for c in changes], "statuses": [c["status"] for c in changes],
        "refs": [c["bank_reference"] for c in changes],
        "settled": [c["settled"] for c in changes],
        "amounts": [c["settled_amount_vnd"] for c in changes]})
    await session.execute(sa.insert(tables.instruction_status), run.statuses)
    if run.applications:
        last = {a["application_id"]: a["status"] for a in run.applications}
        await session.execute(_UPDATE_APPLICATIONS, {"ids": list(last),
                                                     "statuses": list(last.values())})
        await session.execute(sa.insert(tables.application_status), [
            {k: a[k] for k in ("application_id", "status", "actor", "reason")}
            for a in run.applications])
    if run.loans:
        await session.execute(pg_insert(tables.loan).on_conflict_do_nothing(), run.loans)


__all__ = ["fast", "on_bank_statuses"]
