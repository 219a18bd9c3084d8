"""Queries: rule sets, the what-if evaluation, classifications and programme eligibility."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import domain, schemas, tables
from services.eligibility.handlers import reviews
from services.eligibility.handlers.common import Service, invalid, jsonable
from services.eligibility.handlers.deciding import programs_of, standing_of
from shared.auth import Principal, scope_clause
from shared.problems import not_found

H = tables.household
C = tables.classification


# --- rule sets -------------------------------------------------------------------------------

def ruleset_summary(rs: domain.RuleSet) -> dict[str, Any]:
    """A rule set in a listing."""
    return jsonable({
        "id": rs.id, "title": rs.title, "title_vi": rs.title_vi, "legal_basis": list(rs.legal_basis),
        "effective_from": rs.effective_from, "effective_to": rs.effective_to,
        "scope": "province" if rs.is_local else "national", "extends": rs.extends,
        "province_codes": list(rs.province_codes), "income_lines_vnd": rs.income_lines_vnd,
        "middle_lines_vnd": rs.middle_lines_vnd, "deprivation_threshold": rs.deprivation_threshold,
        "indicator_codes": list(rs.indicator_codes), "digest": rs.digest,
        "has_unconfirmed_values": bool(rs.unconfirmed),
    })


def ruleset_detail(rs: domain.RuleSet) -> dict[str, Any]:
    """A rule set with its category bands, indicators and what is unconfirmed."""
    bands = {}
    for area in domain.AREA_TYPES:
        line, middle = rs.line(area), rs.middle_line(area)
        bands[area] = [
            {"category": "poor", "income": f"≤ {line}",
             "deprivations": f"≥ {rs.deprivation_threshold}"},
            {"category": "near_poor", "income": f"≤ {line}",
             "deprivations": f"< {rs.deprivation_threshold}"},
            *([{"category": "middle", "income": f"> {line} and ≤ {middle}"}] if middle else []),
            {"category": "not_poor", "income": f"> {middle or line}"},
        ]
    return ruleset_summary(rs) | jsonable({
        "income_measure": rs.income_measure, "category_bands": bands,
        "dimensions": [asdict(d) for d in rs.dimensions],
        "indicators": [asdict(i) | {"unconfirmed": i.unconfirmed or rs.is_unconfirmed(
            f"indicators.{i.code}.definition")} for i in rs.indicators],
        "unconfirmed": [asdict(u) for u in rs.unconfirmed], "notes": rs.notes,
    })


def get_ruleset(svc: Service, ruleset_id: str) -> domain.RuleSet:
    """A rule set by id, or 404."""
    try:
        return svc.rulebook.get(ruleset_id)
    except KeyError:
        raise not_found("rule set", ruleset_id) from None


# --- what-if ---------------------------------------------------------------------------------

def evaluate(svc: Service, body: schemas.EvaluateRequest) -> dict[str, Any]:
    """Classify made-up inputs under a rule set; stores nothing."""
    book = svc.rulebook
    if body.ruleset_id is not None:
        try:
            rs = book.get(body.ruleset_id)
        except KeyError:
            raise invalid("ruleset_id", f"unknown rule set {body.ruleset_id!r}; one of "
                                        f"{', '.join(book.by_id)}") from None
        if body.survey_date is not None and not rs.covers(body.survey_date):
            raise invalid("survey_date", f"{rs.id} is in force {rs.effective_from} to "
                                         f"{rs.effective_to}, not on {body.survey_date}")
    elif body.survey_date is None:
        raise invalid("survey_date", "give survey_date or ruleset_id")
    else:
        try:
            rs = book.select(body.survey_date, body.province_code)
        except domain.NoRuleSet as exc:
            raise invalid("survey_date", str(exc)) from None
    unknown = sorted(set(body.deprivations) - book.indicator_codes)
    if unknown:
        raise invalid(f"deprivations.{unknown[0]}",
                      f"unknown indicator; one of {', '.join(sorted(book.indicator_codes))}")
    decision = domain.classify(rs, area_type=body.area_type,
                               income_per_capita_vnd=body.income_per_capita_vnd,
                               deprivations=dict(body.deprivations))
    e = decision.explanation
    return {"category": decision.category, "ruleset_id": rs.id, "explanation": {
        "income_line_vnd": e.income_line_vnd, "deprived": e.deprived_codes,
        "deprivation_count": e.deprivation_count, "threshold": e.threshold,
        "missing": e.missing, "area_type": e.area_type,
        "income_per_capita_vnd": e.income_per_capita_vnd, "middle_line_vnd": e.middle_line_vnd,
        "deprived_indicators": e.deprived, "ignored": e.ignored, "legal_basis": e.legal_basis,
        "text": e.text}}


# --- classifications -------------------------------------------------------------------------

def classification_view(row: Any) -> dict[str, Any]:
    """A stored classification as the API returns it."""
    r = dict(row)
    out = {"classification_id": r.pop("id"), **r}
    out.pop("fingerprint", None)
    return jsonable(out)


async def _household(session: AsyncSession, user: Principal, household_id: str) -> Any:
    row = (await session.execute(sa.select(H).where(H.c.id == household_id))).mappings().first()
    if row is None or not user.covers(province_code=row["province_code"],
                                      commune_code=row["commune_code"]):
        raise not_found("household", household_id)
    return row


async def current(session: AsyncSession, svc: Service, *, user: Principal,
                  household_id: str) -> dict[str, Any]:
    """The household's latest classification, with status, explanation and recognized standing."""
    h = await _household(session, user, household_id)
    if h["current_classification_id"] is None:
        raise not_found("classification for household", household_id)
    cls = (await session.execute(sa.select(C).where(C.c.id == h["current_classification_id"])
                                 )).mappings().one()
    transitions = (await session.execute(
        sa.select(tables.transition).where(tables.transition.c.household_id == household_id)
        .order_by(tables.transition.c.id))).mappings().all()
    standing = standing_of(dict(h))
    today = svc.today()
    return classification_view(cls) | jsonable({
        "household_status": h["status"],
        "recognized": None if standing.category is None else {
            "classification_id": h["recognized_classification_id"],
            "category": standing.category, "recognized_on": standing.recognized_on,
            "ruleset_id": standing.ruleset_id},
        "just_escaped": standing.just_escaped(today),
        "escaped_poverty_on": standing.escaped_poverty_on,
        "just_escaped_until": standing.just_escaped_until,
        "transitions": [{k: v for k, v in dict(t).items() if k != "id"} for t in transitions],
        # Ad-hoc reviews still open (a shock hit the household's area): the category above
        # stands until a re-survey is decided and recognized.
        "under_review": await reviews.open_reviews_of(session, household_id, today),
    })


async def history(session: AsyncSession, *, user: Principal,
                  household_id: str) -> list[dict[str, Any]]:
    """Every classification of the household, newest first."""
    await _household(session, user, household_id)
    rows = (await session.execute(sa.select(C).where(C.c.household_id == household_id)
                                  .order_by(C.c.decided_at.desc(), C.c.id))).mappings().all()
    return [classification_view(r) for r in rows]


async def listing(session: AsyncSession, *, user: Principal, commune_code: str | None,
                  category: str | None, status: str | None, limit: int,
                  offset: int) -> list[dict[str, Any]]:
    """Classifications in the caller's scope (filters: commune, category, status), newest first."""
    q = sa.select(C).where(scope_clause(user, C))
    for col, value in ((C.c.commune_code, commune_code), (C.c.category, category),
                       (C.c.status, status)):
        if value is not None:
            q = q.where(col == value)
    rows = (await session.execute(q.order_by(C.c.decided_at.desc(), C.c.id).limit(limit)
                                  .offset(offset))).mappings().all()
    return [classification_view(r) for r in rows]


async def programs(session: AsyncSession, svc: Service, *, user: Principal,
                   household_id: str) -> dict[str, Any]:
    """Each programme with eligible true/false and the reason, as of today."""
    h = dict(await _household(session, user, household_id))
    standing = standing_of(h)
    today: date = svc.today()
    return jsonable({
        "household_id": household_id, "as_of": today,
        "recognized_category": standing.category,
        "recognized_classification_id": h["recognized_classification_id"],
        "current_category": h["current_category"], "household_status": h["status"],
        "just_escaped": standing.just_escaped(today),
        "just_escaped_until": standing.just_escaped_until,
        "programs": [p.as_dict() for p in programs_of(svc, h)],
    })
