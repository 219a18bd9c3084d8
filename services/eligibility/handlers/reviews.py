"""Ad-hoc (regular) reviews after a disaster shock (POLICY.md §3; Decision 24/2021: the regular
review is monthly). A declared shock lists every active household of its communes (or of the
named villages) for re-survey by a due date; a survey on or after the shock's day closes the
review and is decided as every survey is. A review changes nobody's classification or
programmes: support stays as recognized until a re-survey is decided, posted and recognized."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import events, tables
from services.eligibility.handlers.common import Service, jsonable
from services.registry import events as registry_events
from shared.auth import Principal, scope_clause
from shared.consumer import BatchContext, EventContext
from shared.problems import not_found

R = tables.review

# Every active household of the whole communes, or of the (commune, village) pairs; one row per
# household and shock (a repeated declaration event opens nothing twice).
_OPEN = sa.text("""
    INSERT INTO review (id, household_id, shock_id, shock_type, shock_title, occurred_on, due_on,
                        province_code, commune_code, village)
    SELECT gen_random_uuid(), h.id, :shock_id, :shock_type, :shock_title, :occurred_on, :due_on,
           h.province_code, h.commune_code, h.village
    FROM household h
    WHERE h.status = 'active' AND (
        h.commune_code = ANY(CAST(:whole AS text[]))
        OR (h.commune_code, h.village) IN (
            SELECT c, v FROM unnest(CAST(:pair_communes AS text[]), CAST(:pair_villages AS text[]))
                AS u(c, v)))
    ON CONFLICT (household_id, shock_id) DO NOTHING
    RETURNING id, household_id, province_code, commune_code, village, opened_at,
              (SELECT head_name FROM household WHERE id = review.household_id) AS head_name
""")

# A survey on or after the shock's day closes the household's open reviews (set-based).
_CLOSE = sa.text("""
    UPDATE review r SET status = 'closed', closed_at = now(), survey_id = u.s,
                        survey_date = u.d, survey_event_id = u.e
    FROM unnest(CAST(:households AS text[]), CAST(:dates AS date[]), CAST(:surveys AS text[]),
                CAST(:events AS text[])) AS u(h, d, s, e)
    WHERE r.household_id = u.h AND r.status = 'open' AND u.d >= r.occurred_on
    RETURNING r.id, r.household_id, r.shock_id, r.due_on, r.closed_at, u.d AS survey_date,
              u.s AS survey_id, u.e AS survey_event_id
""")


async def on_shock_declared(svc: Service, ctx: EventContext,
                            p: registry_events.ShockDeclaredV1) -> None:
    """Open a review for every household of the shock's area; one event per household, each
    caused by the declaration (one outbox insert for all)."""
    whole = [a.commune_code for a in p.areas if not a.villages]
    pairs = [(a.commune_code, v) for a in p.areas for v in a.villages]
    rows = (await ctx.session.execute(_OPEN, {
        "shock_id": p.shock_id, "shock_type": p.type, "shock_title": p.title,
        "occurred_on": p.occurred_on, "due_on": p.review_due_on, "whole": whole,
        "pair_communes": [c for c, _ in pairs], "pair_villages": [v for _, v in pairs],
    })).mappings().all()
    for row in rows:
        data = events.ReviewOpenedV1(
            review_id=str(row["id"]), household_id=row["household_id"], shock_id=p.shock_id,
            shock_type=p.type, shock_title=p.title, occurred_on=p.occurred_on,
            due_on=p.review_due_on, province_code=row["province_code"],
            commune_code=row["commune_code"], village=row["village"],
            head_name=row["head_name"], opened_at=row["opened_at"])
        await ctx.emit(events.TOPIC, type=events.REVIEW_OPENED, subject=row["household_id"],
                       data=jsonable(data.model_dump(mode="json")))


async def close_reviews(svc: Service, ctx: BatchContext,
                        surveys: dict[str, tuple[registry_events.HouseholdSurveyedV1, Any]]
                        ) -> None:
    """The batch's current surveys (household → (payload, its event)) close the households'
    open reviews whose shock they postdate; a `review.closed` for each, caused by the survey."""
    if not surveys:
        return
    ids = sorted(surveys)
    rows = (await ctx.session.execute(_CLOSE, {
        "households": ids, "dates": [surveys[h][0].survey.survey_date for h in ids],
        "surveys": [surveys[h][0].survey.survey_id for h in ids],
        "events": [surveys[h][1].id for h in ids],
    })).mappings().all()
    for row in rows:
        item_event = surveys[row["household_id"]][1]
        data = events.ReviewClosedV1(
            review_id=str(row["id"]), household_id=row["household_id"], shock_id=row["shock_id"],
            survey_id=row["survey_id"], survey_date=row["survey_date"],
            survey_event_id=row["survey_event_id"], closed_at=row["closed_at"],
            overdue=row["survey_date"] > row["due_on"])
        env = svc.outbox.new(type=events.REVIEW_CLOSED, subject=row["household_id"],
                             data=jsonable(data.model_dump(mode="json")), causation=item_event)
        await svc.emit(ctx.session, env)


def review_view(row: Any, *, today: date) -> dict[str, Any]:
    """A review as the API answers it (`overdue`: still open after its due date)."""
    r = dict(row)
    r["review_id"] = str(r.pop("id"))
    r["overdue"] = r["status"] == "open" and r["due_on"] < today
    return jsonable(r)


async def listing(session: AsyncSession, *, user: Principal, commune_code: str | None,
                  shock_id: str | None, status: str | None, household_id: str | None,
                  today: date, limit: int, offset: int) -> list[dict[str, Any]]:
    """Reviews in the caller's scope: a commune's open ones are its re-survey list."""
    q = sa.select(R).where(scope_clause(user, R))
    if commune_code:
        q = q.where(R.c.commune_code == commune_code)
    if shock_id:
        q = q.where(R.c.shock_id == shock_id)
    if status:
        q = q.where(R.c.status == status)
    if household_id:
        q = q.where(R.c.household_id == household_id)
    rows = (await session.execute(q.order_by(R.c.due_on, R.c.commune_code, R.c.household_id)
                                  .limit(limit).offset(offset))).mappings().all()
    return [review_view(r, today=today) for r in rows]


async def open_reviews_of(session: AsyncSession, household_id: str,
                          today: date) -> list[dict[str, Any]]:
    """A household's open reviews (its classification shows them)."""
    rows = (await session.execute(sa.select(R).where(R.c.household_id == household_id,
                                                     R.c.status == "open")
                                  .order_by(R.c.opened_at))).mappings().all()
    return [review_view(r, today=today) for r in rows]


async def get(session: AsyncSession, *, user: Principal, review_id: str,
              today: date) -> dict[str, Any]:
    """One review (404 when unknown or outside the caller's scope)."""
    try:
        uuid.UUID(review_id)
    except ValueError:
        raise not_found("review", review_id) from None
    row = (await session.execute(sa.select(R).where(R.c.id == review_id,
                                                    scope_clause(user, R)))).mappings().first()
    if row is None:
        raise not_found("review", review_id)
    return review_view(row, today=today)

