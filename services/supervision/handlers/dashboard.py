"""Dashboard figures: set-based aggregates over what supervision projects and records."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import events as disbursement_events
from services.registry import events as registry_events
from services.supervision import domain, tables
from services.supervision.handlers.common import now, province_of
from shared.auth import Principal, scope_clause
from shared.problems import not_found

CL = tables.classification
C = tables.complaint
F = tables.finding
P = tables.posting
PI = tables.posting_item
T = tables.timeline_entry
HA = tables.household_area
CA = tables.commune_area

# The registry's field visits (issue 13 §1): a funnel stage once any are on the timeline.
VISITED = registry_events.HOUSEHOLD_VISITED


@dataclass(frozen=True)
class Area:
    """What a dashboard covers: one commune, one province, or the caller's whole scope."""

    commune_code: str | None = None
    province_code: str | None = None

    def where(self, user: Principal, table: sa.Table) -> sa.ColumnElement[bool]:
        """Rows of `table` (commune_code, maybe-null province_code) inside this area."""
        if self.commune_code is not None:
            return table.c.commune_code == self.commune_code
        if self.province_code is not None:
            # Some tables leave province_code empty; the commune's province is then projected.
            return sa.or_(table.c.province_code == self.province_code,
                          table.c.commune_code.in_(sa.select(CA.c.commune_code).where(
                              CA.c.province_code == self.province_code)))
        return scope_clause(user, table)

    def query(self) -> dict[str, str]:
        """The list endpoints' filter for this area (they take a commune; else the scope)."""
        return {"commune_code": self.commune_code} if self.commune_code else {}


async def area_of(session: AsyncSession, user: Principal, *, commune_code: str | None,
                  province_code: str | None) -> Area:
    """The area asked for; 404 when it is outside the caller's scope."""
    if commune_code is not None:
        province = await province_of(session, commune_code)
        if not user.covers(commune_code=commune_code, province_code=province) or (
                province_code is not None and province is not None and province != province_code):
            raise not_found("commune", commune_code)
        return Area(commune_code=commune_code)
    if province_code is not None:
        if not user.covers(province_code=province_code):
            raise not_found("province", province_code)
        return Area(province_code=province_code)
    return Area()


async def _pairs(session: AsyncSession, q: sa.Select[Any]) -> list[tuple[str, int]]:
    return [(str(k), int(n)) for k, n in (await session.execute(q)).all()]


async def figures(session: AsyncSession, *, user: Principal, area: Area,
                  review_round: str | None = None) -> dict[str, Any]:
    """Every figure of the officers' dashboard, each one aggregate query."""
    at = now()
    in_area = area.where(user, CL)
    by_category = await _pairs(session, sa.select(CL.c.category, sa.func.count())
                               .where(in_area).group_by(CL.c.category)
                               .order_by(sa.func.count().desc(), CL.c.category))
    by_village = await _pairs(session, sa.select(CL.c.village, sa.func.count())
                              .where(in_area, CL.c.category.in_(("poor", "near_poor")))
                              .group_by(CL.c.village).order_by(CL.c.village))
    if review_round is None:
        review_round = await session.scalar(sa.select(CL.c.review_round).where(
            in_area, CL.c.review_round.is_not(None)).order_by(CL.c.decided_at.desc()).limit(1))
    return {"at": at, "review_round": review_round, "by_category": by_category,
            "by_village": by_village,
            "funnel": await _funnel(session, user=user, area=area, review_round=review_round),
            "complaints": await _complaints(session, user=user, area=area, at=at),
            "loans": await loans(session, user=user, area=area),
            "findings": await _findings(session, user=user, area=area, at=at)}


def _timeline_households(user: Principal, area: Area, *types: str) -> sa.Select[Any]:
    """Distinct households with a timeline entry of `types` inside the area."""
    return (sa.select(T.c.household_id).distinct()
            .join(HA, HA.c.household_id == T.c.household_id)
            .where(T.c.type.in_(types), area.where(user, HA)))


async def _funnel(session: AsyncSession, *, user: Principal, area: Area,
                  review_round: str | None) -> list[tuple[str, int]]:
    """Households at each stage of the survey round that supervision can count."""
    visited = _timeline_households(user, area, VISITED)
    surveyed = _timeline_households(user, area, registry_events.HOUSEHOLD_SURVEYED)
    if review_round is not None:
        surveyed = surveyed.where(T.c.data["survey"]["review_round"].astext == review_round)
        # A visit names its round only sometimes: one that does not counts for any round.
        round_of_visit = T.c.data["visit"]["review_round"].astext
        visited = visited.where(sa.or_(round_of_visit.is_(None),
                                       round_of_visit == review_round))
    cl = sa.select(CL.c.household_id, CL.c.status).where(area.where(user, CL))
    posted = (sa.select(PI.c.household_id).distinct().join(P, P.c.id == PI.c.posting_id)
              .where(area.where(user, P)))
    if review_round is not None:
        cl = cl.where(CL.c.review_round == review_round)
        posted = posted.where(P.c.review_round == review_round)
    cls = cl.subquery()

    def count(q: sa.Select[Any]) -> sa.ScalarSelect[Any]:
        return sa.select(sa.func.count()).select_from(q.subquery()).scalar_subquery()

    row = (await session.execute(sa.select(
        count(visited).label("visited"), count(surveyed).label("surveyed"),
        sa.select(sa.func.count()).select_from(cls).scalar_subquery().label("classified"),
        count(posted).label("posted"),
        sa.select(sa.func.count()).select_from(cls).where(cls.c.status == "recognized")
        .scalar_subquery().label("recognized")))).one()
    stages = [("surveyed", row.surveyed), ("classified", row.classified),
              ("posted", row.posted), ("recognized", row.recognized)]
    # The visit stage exists only once the registry announces visits.
    return ([("visited", row.visited)] if row.visited else []) + [(k, int(n)) for k, n in stages]


async def _complaints(session: AsyncSession, *, user: Principal, area: Area,
                      at: datetime) -> dict[str, int]:
    active = C.c.status.in_(domain.ACTIVE)
    row = (await session.execute(sa.select(
        sa.func.count().filter(active).label("open"),
        sa.func.count().filter(active, C.c.due_at < at).label("overdue"),
        sa.func.count().label("total"),
    ).where(area.where(user, C)))).one()
    return {"open": int(row.open), "overdue": int(row.overdue), "total": int(row.total)}


async def _findings(session: AsyncSession, *, user: Principal, area: Area,
                    at: datetime) -> dict[str, int]:
    answered = F.c.answered_at.is_not(None)
    row = (await session.execute(sa.select(
        sa.func.count().label("total"),
        sa.func.count().filter(answered, F.c.answered_at <= F.c.answer_due_at).label("in_time"),
        sa.func.count().filter(answered, F.c.answered_at > F.c.answer_due_at).label("late"),
        sa.func.count().filter(~answered, F.c.answer_due_at >= at).label("awaiting"),
        sa.func.count().filter(~answered, F.c.answer_due_at < at).label("overdue"),
    ).where(area.where(user, F)))).one()
    return {k: int(getattr(row, k)) for k in ("total", "in_time", "late", "awaiting", "overdue")}


# A literal key (not a bound parameter), so DISTINCT ON and ORDER BY name the same expression.
INSTRUCTION_ID = sa.literal_column("timeline_entry.data ->> 'instruction_id'", sa.Text)


def _int(expr: Any) -> sa.ColumnElement[Any]:
    return sa.cast(expr.astext, sa.BigInteger)


async def loans(session: AsyncSession, *, user: Principal | None, area: Area) -> dict[str, Any]:
    """Applications confirmed, support paid, loans paid out, outstanding and restructured, from
    the disbursement events on the timeline (`user` None: a public page of one commune)."""
    in_area = area.where(user, HA) if user is not None else HA.c.commune_code == area.commune_code
    scoped = sa.select(T).join(HA, HA.c.household_id == T.c.household_id).where(in_area)
    confirmed = scoped.where(T.c.type == disbursement_events.APPLICATION_CONFIRMED).subquery()
    # A `restructure` instruction (a loan's new schedule after a shock) moves no money.
    issued = scoped.where(T.c.type == disbursement_events.INSTRUCTION_ISSUED,
                          sa.func.coalesce(T.c.data["kind"].astext, "disbursement")
                          != "restructure").subquery()
    restructured = scoped.where(T.c.type == disbursement_events.RESTRUCTURING_APPLIED).subquery()
    # Each instruction's latest status; paid out when it is `settled`.
    latest = (sa.select(INSTRUCTION_ID.label("instruction_id"),
                        T.c.data["status"].astext.label("status"),
                        _int(T.c.data["amount_vnd"]).label("amount"))
              .distinct(INSTRUCTION_ID)
              .join(HA, HA.c.household_id == T.c.household_id)
              .where(in_area, T.c.type == disbursement_events.INSTRUCTION_STATUS_CHANGED)
              .order_by(INSTRUCTION_ID, T.c.time.desc(), T.c.id.desc())
              .subquery())
    repaid = (sa.select(INSTRUCTION_ID.label("instruction_id"),
                        _int(T.c.data["repaid_vnd"]).label("repaid"),
                        _int(T.c.data["outstanding_principal_vnd"]).label("outstanding"))
              .distinct(INSTRUCTION_ID)
              .join(HA, HA.c.household_id == T.c.household_id)
              .where(in_area, T.c.type == disbursement_events.REPAYMENT_RECORDED)
              .order_by(INSTRUCTION_ID, T.c.time.desc(), T.c.id.desc())
              .subquery())
    is_loan = issued.c.data["term_months"].astext.is_not(None)
    paid = sa.func.coalesce(latest.c.amount, _int(issued.c.data["amount_vnd"]))
    settled = (sa.select(
        sa.func.count().filter(is_loan).label("disbursed"),
        sa.func.coalesce(sa.func.sum(paid).filter(is_loan), 0).label("disbursed_vnd"),
        sa.func.count().filter(~is_loan).label("support"),
        sa.func.coalesce(sa.func.sum(paid).filter(~is_loan), 0).label("support_vnd"),
        sa.func.count(sa.distinct(issued.c.household_id)).label("households"),
        sa.func.coalesce(sa.func.sum(repaid.c.repaid).filter(is_loan), 0).label("repaid_vnd"),
        sa.func.coalesce(sa.func.sum(sa.func.coalesce(repaid.c.outstanding, paid))
                         .filter(is_loan), 0).label("outstanding_vnd"))
        .select_from(issued.join(latest, latest.c.instruction_id
                                 == issued.c.data["instruction_id"].astext)
                     .outerjoin(repaid, repaid.c.instruction_id
                                == issued.c.data["instruction_id"].astext))
        .where(latest.c.status == "settled"))
    loan_app = confirmed.c.data["term_months"].astext.is_not(None)
    row = (await session.execute(sa.select(
        sa.select(sa.func.count(sa.distinct(confirmed.c.data["application_id"].astext)))
        .where(loan_app).scalar_subquery().label("confirmed"),
        sa.select(sa.func.coalesce(sa.func.sum(_int(confirmed.c.data["amount_vnd"])), 0))
        .where(loan_app).scalar_subquery().label("confirmed_vnd"),
        sa.select(sa.func.count(sa.distinct(
            restructured.c.data["loan_instruction_id"].astext))).scalar_subquery()
        .label("restructured"),
        *[sa.select(c).scalar_subquery().label(c.name) for c in settled.subquery().c]))).one()
    out = dict(row._mapping)
    return {k: int(v) for k, v in out.items()}


async def public_figures(session: AsyncSession, *, commune_code: str) -> dict[str, Any]:
    """What the law has a commune publish: recognized beneficiaries by category, support and
    credit results — counts and totals only, no household."""
    by_category = await _pairs(session, sa.select(CL.c.category, sa.func.count())
                               .where(CL.c.commune_code == commune_code,
                                      CL.c.status == "recognized",
                                      CL.c.category.in_(("poor", "near_poor")))
                               .group_by(CL.c.category).order_by(CL.c.category.desc()))
    return {"by_category": by_category,
            "results": await loans(session, user=None, area=Area(commune_code=commune_code))}


@lru_cache(maxsize=4)
def _names(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["code"]: r["name"] for r in csv.DictReader(fh) if r.get("code")}


def unit_name(path: Path, code: str) -> str | None:
    """An administrative unit's official name from the admin-unit file (None when unknown)."""
    try:
        return _names(path).get(code)
    except OSError:
        return None


__all__ = ["VISITED", "Area", "area_of", "figures", "loans", "public_figures", "unit_name"]
