"""Loans (schedule, repayments, overdue) and the reconciliation of instructions with partners."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import domain, tables
from services.disbursement.handlers.common import jsonable
from shared.auth import Principal, scope_clause
from shared.problems import not_found
from shared.sanitize import SafeCsvWriter

L = tables.loan
INS = tables.instruction
BANK_STATUS_CONSUMER = "disbursement.bank-status"


def loan_view(row: Any, *, today: date, with_schedule: bool) -> dict[str, Any]:
    """A loan with where it stands today (overdue flag, overdue interest at 130% of the rate)."""
    plan = domain.schedule(principal_vnd=row.principal_vnd, annual_rate_pct=row.annual_rate_pct,
                           term_months=row.term_months, disbursed_on=row.disbursed_on,
                           frozen_from=row.interest_frozen_from,
                           frozen_until=row.interest_frozen_until)
    pos = domain.loan_position(instalments=plan, repaid_vnd=row.repaid_vnd,
                               annual_rate_pct=row.annual_rate_pct, today=today)
    out = jsonable(row._mapping) | {
        "overdue": pos.overdue and row.status == "active",
        "overdue_amount_vnd": pos.overdue_amount_vnd, "overdue_days": pos.overdue_days,
        "overdue_rate_pct": round(row.annual_rate_pct * 1.3, 4),
        "overdue_interest_vnd": pos.overdue_interest_vnd,
        "monthly_interest_vnd": plan[0].interest_vnd,
        "interest_paid_vnd": pos.interest_paid_vnd, "principal_paid_vnd": pos.principal_paid_vnd,
        "instalments_paid": pos.instalments_paid,
    }
    if with_schedule:
        out["schedule"] = [{"number": i.number, "due_date": i.due_date.isoformat(),
                            "interest_vnd": i.interest_vnd, "principal_vnd": i.principal_vnd,
                            "total_vnd": i.total_vnd} for i in plan]
    return out


async def read_loan(session: AsyncSession, *, user: Principal, instruction_id: str) -> dict[str, Any]:
    """One loan with its full schedule and repayments."""
    row = (await session.execute(sa.select(L).where(L.c.instruction_id == instruction_id))).first()
    if row is None or not user.covers_row(row):
        raise not_found("loan", instruction_id)
    out = loan_view(row, today=date.today(), with_schedule=True)
    r = tables.repayment
    out["repayments"] = [jsonable(x) for x in (await session.execute(
        sa.select(r.c.amount_vnd, r.c.bank_reference, r.c.occurred_at)
        .where(r.c.instruction_id == instruction_id).order_by(r.c.occurred_at))).mappings()]
    return out


async def list_loans(session: AsyncSession, *, user: Principal, commune_code: str | None,
                     household_id: str | None, overdue: bool | None) -> list[dict[str, Any]]:
    """Loans in scope; `overdue=true` lists those with an unpaid instalment past its date."""
    q = sa.select(L)
    q = q.where(scope_clause(user, L))
    if commune_code:
        q = q.where(L.c.commune_code == commune_code)
    if household_id:
        q = q.where(L.c.household_id == household_id)
    today = date.today()
    if overdue is not None:
        late = sa.and_(L.c.status == "active", L.c.next_due_date < today)
        q = q.where(late if overdue else sa.not_(late))
    rows = (await session.execute(q.order_by(L.c.disbursed_on).limit(5000))).all()
    return [loan_view(r, today=today, with_schedule=False) for r in rows]


async def reconciliation(session: AsyncSession, *, user: Principal, programme_code: str | None,
                         commune_code: str | None) -> dict[str, Any]:
    """Counts and amounts per instruction status, and every mismatch with the partners' side."""
    where = []
    where.append(scope_clause(user, INS))
    if programme_code:
        where.append(INS.c.programme_code == programme_code)
    if commune_code:
        where.append(INS.c.commune_code == commune_code)
    money = [*where, INS.c.kind == "disbursement"]  # restructure instructions move no money
    per_status = (await session.execute(
        sa.select(INS.c.status, sa.func.count().label("count"),
                  sa.cast(sa.func.coalesce(sa.func.sum(INS.c.amount_vnd), 0), sa.BigInteger)
                  .label("amount_vnd"),
                  sa.cast(sa.func.coalesce(sa.func.sum(INS.c.settled_amount_vnd), 0), sa.BigInteger)
                  .label("settled_amount_vnd"))
        .where(*money).group_by(INS.c.status).order_by(INS.c.status))).mappings().all()
    mismatches: list[dict[str, Any]] = []
    differing = (await session.execute(sa.select(INS).where(
        *where, INS.c.settled_amount_vnd.is_not(None), INS.c.settled_amount_vnd != INS.c.amount_vnd))).all()
    for r in differing:
        mismatches.append({"kind": "amount_differs", "instruction_id": r.id, "partner": r.partner,
                           "amount_vnd": r.amount_vnd, "partner_amount_vnd": r.settled_amount_vnd,
                           "detail": f"settled for {r.settled_amount_vnd:,} VND; the instruction "
                                     f"was for {r.amount_vnd:,} VND"})
    twice = (await session.execute(sa.select(INS).where(*where, INS.c.settled_messages > 1))).all()
    for r in twice:
        mismatches.append({"kind": "settled_twice", "instruction_id": r.id, "partner": r.partner,
                           "amount_vnd": r.amount_vnd, "partner_amount_vnd": r.settled_amount_vnd,
                           "detail": f"the partner reported settled {r.settled_messages} times"})
    mismatches.extend(await _refused_statuses(session, user=user, where=where,
                                              filtered=bool(programme_code or commune_code)))
    statuses = [dict(r) for r in per_status]
    restructured = await _restructured(session, user=user, programme_code=programme_code,
                                       commune_code=commune_code)
    return {"programme_code": programme_code, "commune_code": commune_code,
            "generated_at": date.today().isoformat(),
            "by_status": statuses,
            "totals": {"count": sum(s["count"] for s in statuses),
                       "amount_vnd": sum(s["amount_vnd"] for s in statuses),
                       "settled_amount_vnd": sum(s["settled_amount_vnd"] for s in statuses)},
            "restructured": {"count": len(restructured), "loans": restructured},
            "mismatches": mismatches}


async def _restructured(session: AsyncSession, *, user: Principal, programme_code: str | None,
                        commune_code: str | None) -> list[dict[str, Any]]:
    """Restructurings the partner applied: which loan, how, and the new schedule."""
    r = tables.restructuring
    q = sa.select(r.c.loan_instruction_id, r.c.id.label("restructuring_id"), r.c.household_id,
                  r.c.programme_code, r.c.commune_code, r.c.shock_id, r.c.option, r.c.months,
                  r.c.new_term_months, r.c.new_maturity_date, r.c.interest_frozen_from,
                  r.c.interest_frozen_until, r.c.applied_at,
                  INS.c.id.label("instruction_id"), INS.c.partner, INS.c.bank_reference
                  ).join(INS, INS.c.restructuring_id == r.c.id).where(
        r.c.status == "applied", scope_clause(user, r))
    if programme_code:
        q = q.where(r.c.programme_code == programme_code)
    if commune_code:
        q = q.where(r.c.commune_code == commune_code)
    rows = (await session.execute(q.order_by(r.c.applied_at, r.c.id).limit(5000))).mappings()
    return [jsonable(x) for x in rows]


async def _refused_statuses(session: AsyncSession, *, user: Principal, where: list,
                            filtered: bool) -> list[dict[str, Any]]:
    """Partner statuses that were dead-lettered: for unknown instructions or refused steps."""
    dl = tables.platform.dead_letter
    rows = (await session.execute(sa.select(dl).where(dl.c.consumer == BANK_STATUS_CONSUMER,
                                                      dl.c.replayed_at.is_(None))
                                  .order_by(dl.c.id).limit(5000))).all()
    parsed = []
    for r in rows:
        try:
            body = json.loads(r.value or b"{}")
        except ValueError:
            body = {}
        parsed.append((r, body if isinstance(body, dict) else {}))
    ids = {b.get("instruction_id") for _, b in parsed if b.get("instruction_id")}
    known = {x.id: x for x in (await session.execute(
        sa.select(INS.c.id, INS.c.partner).where(INS.c.id.in_(ids), *where))).all()} if ids else {}
    everything = {x for x in (await session.scalars(
        sa.select(INS.c.id).where(INS.c.id.in_(ids))))} if ids else set()
    out = []
    for r, body in parsed:
        iid = body.get("instruction_id")
        unknown = iid not in everything
        if unknown and (filtered or not user.national):
            continue  # an unknown instruction has no programme or commune to filter on
        if not unknown and iid not in known:
            continue  # outside the filter or the caller's scope
        out.append({"kind": "unknown_instruction" if unknown else "refused_status",
                    "instruction_id": iid, "partner": r.topic.removeprefix("disbursement.status."),
                    "status": body.get("status"), "amount_vnd": None,
                    "partner_amount_vnd": body.get("amount_vnd"), "detail": r.reason,
                    "dead_letter_id": r.id})
    return out


def reconciliation_csv(report: dict[str, Any]) -> str:
    """The report as CSV: one row per status, then one row per mismatch (text cells that a
    spreadsheet would run as formulas are neutralised: partners' messages end up here)."""
    buf = io.StringIO()
    w = SafeCsvWriter(buf)
    w.writerow(["section", "status_or_kind", "count", "amount_vnd", "settled_amount_vnd",
                "instruction_id", "partner", "partner_amount_vnd", "detail"])
    for s in report["by_status"]:
        w.writerow(["status", s["status"], s["count"], s["amount_vnd"], s["settled_amount_vnd"],
                    "", "", "", ""])
    t = report["totals"]
    w.writerow(["total", "", t["count"], t["amount_vnd"], t["settled_amount_vnd"], "", "", "", ""])
    for x in report.get("restructured", {}).get("loans", []):
        w.writerow(["restructured", x["option"], 1, "", "", x["loan_instruction_id"],
                    x["partner"] or "", "", f"{x['months']} months after shock {x['shock_id']}; "
                    f"maturity {x['new_maturity_date']}"])
    for m in report["mismatches"]:
        w.writerow(["mismatch", m["kind"], 1, m.get("amount_vnd") or "", "", m["instruction_id"] or "",
                    m.get("partner") or "", m.get("partner_amount_vnd") or "", m["detail"]])
    return buf.getvalue()
