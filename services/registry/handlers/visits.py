"""Visit use cases: record a cadre's visit to a household (event through the outbox), list a
household's visits, and a commune's door-to-door coverage in a review round (set-based SQL)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas, tables
from services.registry.domain.visits import FOLLOW_UP, UNREACHED
from services.registry.handlers.common import (
    H,
    S,
    actor_of,
    communes,
    invalid,
    is_uuid,
    jsonable,
    load,
    snapshot,
    violations_or_none,
)
from services.registry.handlers.households import decode_cursor, encode_cursor
from shared.auth import Principal
from shared.outbox import Outbox
from shared.problems import Problem, not_found

C, VI = tables.cadre, tables.visit


def visit_read(v: Any, cadre: Any, *, event_id: str | None = None) -> schemas.VisitRead:
    """A visit row (and its cadre's) as the API returns it."""
    return schemas.VisitRead(
        visit_id=str(v["id"]), household_id=str(v["household_id"]),
        cadre_id=str(v["cadre_id"]), cadre_name=cadre["name"],
        organisation=cadre["organisation"], village=v["village"], visited_on=v["visited_on"],
        outcome=v["outcome"], note=v["note"], next_visit_due=v["next_visit_due"],
        review_round=v["review_round"], recorded_by=v["recorded_by"],
        recorded_at=v["created_at"], event_id=event_id)


def visit_snapshot(v: Any, cadre: Any) -> dict[str, Any]:
    """A visit as the event carries it (VisitV1; never the cadre's phone)."""
    return jsonable({
        "visit_id": str(v["id"]), "cadre_id": str(v["cadre_id"]), "cadre_name": cadre["name"],
        "organisation": cadre["organisation"], "visited_on": v["visited_on"],
        "outcome": v["outcome"], "note": v["note"], "next_visit_due": v["next_visit_due"],
        "review_round": v["review_round"], "recorded_by": v["recorded_by"]})


async def record(*, session: AsyncSession, outbox: Outbox, household_id: str,
                 body: schemas.VisitCreate, user: Principal,
                 today: date | None = None) -> schemas.VisitRead:
    """Record a visit and publish `household.visited` (one transaction; the household's
    version does not change: a visit is a fact about it, not a change of it)."""
    row, members = await load(session, household_id=household_id, user=user, for_update=True)
    if row["status"] != "active":
        raise Problem(409, f"household {household_id} is archived "
                           f"({row['archive_reason'] or 'no reason given'}); a visit cannot be "
                           "recorded", errors=[{"field": "household_id",
                                                "message": "the household is archived"}])
    violations_or_none(domain.visit_violations(
        visited_on=body.visited_on, outcome=body.outcome, next_visit_due=body.next_visit_due,
        today=today or date.today()))
    cadre = None
    if is_uuid(body.cadre_id):
        cadre = (await session.execute(sa.select(C).where(C.c.id == body.cadre_id))
                 ).mappings().first()
    if cadre is None or cadre["commune_code"] != row["commune_code"]:
        raise invalid([domain.Violation(
            "cadre_id", f"{body.cadre_id} is not a cadre of commune {row['commune_code']}, "
                        "the household's")])
    actor = actor_of(user)
    visit = (await session.execute(sa.insert(VI).values(
        id=str(uuid.uuid4()), household_id=household_id, cadre_id=body.cadre_id,
        commune_code=row["commune_code"], village=row["village"], visited_on=body.visited_on,
        outcome=body.outcome, note=body.note, next_visit_due=body.next_visit_due,
        review_round=body.review_round, recorded_by=actor).returning(*VI.c))).mappings().one()
    env = outbox.new(type=events.HOUSEHOLD_VISITED, subject=household_id, data=jsonable({
        "household_id": household_id, "version": row["version"],
        "visit": visit_snapshot(visit, cadre), "household": snapshot(row, members),
        "actor": actor}))
    await outbox.add(session, events.TOPIC, env)
    return visit_read(visit, cadre, event_id=env.id)


async def list_visits(*, session: AsyncSession, household_id: str,
                      user: Principal) -> list[schemas.VisitRead]:
    """Every visit of a household, newest first."""
    await load(session, household_id=household_id, user=user)
    rows = (await session.execute(
        sa.select(VI, C.c.name, C.c.organisation).join(C, C.c.id == VI.c.cadre_id)
        .where(VI.c.household_id == household_id)
        .order_by(VI.c.visited_on.desc(), VI.c.created_at.desc()))).mappings().all()
    return [visit_read(r, r) for r in rows]


async def coverage(*, session: AsyncSession, user: Principal, commune_code: str,
                   review_round: str, attempts: int, today: date | None = None,
                   cursor: str | None = None, limit: int = 100) -> schemas.Coverage:
    """A commune's coverage in a round: per village, per cadre, and the unvisited households
    (one page) — a fixed number of set-based statements whatever the commune's size."""
    today = today or date.today()
    known = await communes(session, [commune_code])
    if commune_code not in known or not user.covers(province_code=known[commune_code][0],
                                                    commune_code=commune_code):
        raise not_found("commune", commune_code)
    after = decode_cursor(cursor) if cursor else None
    active = sa.and_(H.c.commune_code == commune_code, H.c.status == "active")
    # This round's visits of the commune's active households.
    round_visits = (sa.select(VI).join(H, H.c.id == VI.c.household_id)
                    .where(active, VI.c.review_round == review_round).subquery("rv"))
    per_household = sa.select(
        round_visits.c.household_id,
        sa.func.count().label("visits"),
        sa.func.count().filter(round_visits.c.outcome.in_(UNREACHED)).label("unreached"),
        sa.func.bool_or(round_visits.c.outcome == "surveyed").label("surveyed"),
    ).group_by(round_visits.c.household_id).subquery("ph")
    latest = (sa.select(round_visits.c.household_id, round_visits.c.outcome,
                        round_visits.c.next_visit_due)
              .distinct(round_visits.c.household_id)
              .order_by(round_visits.c.household_id, round_visits.c.visited_on.desc(),
                        round_visits.c.created_at.desc()).subquery("lv"))
    surveyed_round = (sa.select(S.c.household_id).join(H, H.c.id == S.c.household_id)
                      .where(active, S.c.review_round == review_round)
                      .distinct().subquery("sr"))
    is_surveyed = sa.or_(per_household.c.surveyed.is_(True),
                         surveyed_round.c.household_id.is_not(None))
    villages = (await session.execute(
        sa.select(
            H.c.village, sa.func.count().label("households"),
            sa.func.count(per_household.c.household_id).label("visited"),
            sa.func.count().filter(is_surveyed).label("surveyed"),
            sa.func.count().filter(per_household.c.visits >= attempts,
                                   per_household.c.unreached == per_household.c.visits
                                   ).label("not_reached"),
            sa.func.count().filter(latest.c.outcome == FOLLOW_UP,
                                   latest.c.next_visit_due < today).label("overdue_follow_ups"),
        ).select_from(H)
        .outerjoin(per_household, per_household.c.household_id == H.c.id)
        .outerjoin(latest, latest.c.household_id == H.c.id)
        .outerjoin(surveyed_round, surveyed_round.c.household_id == H.c.id)
        .where(active).group_by(H.c.village).order_by(H.c.village))).mappings().all()
    cadres = (await session.execute(
        sa.select(
            C.c.id, C.c.name, C.c.organisation,
            sa.func.count(round_visits.c.id).label("visits"),
            sa.func.count(round_visits.c.household_id.distinct()).label("households"),
            sa.func.count(round_visits.c.household_id.distinct()).filter(
                round_visits.c.outcome == "surveyed").label("surveyed"),
            sa.func.count(round_visits.c.id).filter(
                round_visits.c.outcome == FOLLOW_UP).label("follow_ups"),
        ).select_from(C).outerjoin(round_visits, round_visits.c.cadre_id == C.c.id)
        .where(C.c.commune_code == commune_code)
        .group_by(C.c.id, C.c.name, C.c.organisation).order_by(C.c.name, C.c.id))).mappings()
    visited = sa.select(VI.c.id).where(VI.c.household_id == H.c.id,
                                      VI.c.review_round == review_round)
    q = (sa.select(H.c.id, H.c.village, H.c.head_name, H.c.seq)
         .where(active, ~visited.exists()).order_by(H.c.seq).limit(limit + 1))
    if after is not None:
        q = q.where(H.c.seq > after)
    unvisited = list((await session.execute(q)).all())
    more = len(unvisited) > limit
    unvisited = unvisited[:limit]
    return schemas.Coverage(
        commune_code=commune_code, review_round=review_round, not_reached_attempts=attempts,
        as_of=today,
        villages=[schemas.VillageCoverage(**v) for v in villages],
        cadres=[schemas.CadreCoverage(cadre_id=str(c["id"]), name=c["name"],
                                      organisation=c["organisation"], visits=c["visits"],
                                      households=c["households"], surveyed=c["surveyed"],
                                      follow_ups=c["follow_ups"]) for c in cadres],
        unvisited=[schemas.UnvisitedHousehold(household_id=str(u.id), village=u.village,
                                              head_name=u.head_name) for u in unvisited],
        next_cursor=encode_cursor(unvisited[-1].seq) if more and unvisited else None)
