"""Disaster shocks: a province or national officer declares one (flood, storm, drought, …) over
communes and villages; `registry.shock.declared.v1` tells eligibility to open an ad-hoc review
of every household there (POLICY.md §3: the regular review)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas, tables
from services.registry.handlers.common import actor_of, communes, invalid, jsonable
from shared import problems
from shared.auth import Principal
from shared.outbox import Outbox
from shared.problems import Problem

K = tables.shock


def _violations(body: schemas.ShockCreate, *, known: dict[str, tuple[str, str]],
                user: Principal, today: date) -> tuple[list[domain.Violation], bool]:
    """Every bad field; and whether an area lies outside the caller's scope (403)."""
    out: list[domain.Violation] = []
    outside = False
    if body.occurred_on > today:
        out.append(domain.Violation("occurred_on", f"{body.occurred_on} is in the future"))
    if body.review_due_on is not None and body.review_due_on < today:
        out.append(domain.Violation("review_due_on", f"{body.review_due_on} is in the past"))
    seen: set[str] = set()
    for i, area in enumerate(body.areas):
        found = known.get(area.commune_code)
        if found is None:
            out.append(domain.Violation(f"areas.{i}.commune_code",
                                        f"unknown commune {area.commune_code}"))
            continue
        if area.commune_code in seen:
            out.append(domain.Violation(f"areas.{i}.commune_code",
                                        f"commune {area.commune_code} is listed twice"))
        seen.add(area.commune_code)
        if not user.covers(province_code=found[0], commune_code=area.commune_code):
            outside = True
    return out, outside


async def declare(session: AsyncSession, outbox: Outbox, *, body: schemas.ShockCreate,
                  user: Principal, review_days: int, today: date | None = None,
                  ) -> schemas.ShockRead:
    """Record the shock and publish it (one transaction). 422 names every bad field; 403 when a
    commune lies outside the officer's province."""
    today = today or date.today()
    known = await communes(session, [a.commune_code for a in body.areas])
    bad, outside = _violations(body, known=known, user=user, today=today)
    if bad:
        raise invalid(bad)
    if outside:
        raise Problem(403, "a shock may only be declared over communes of your own scope",
                      code="out_of_scope")
    areas = [{"province_code": known[a.commune_code][0], "commune_code": a.commune_code,
              "villages": sorted(set(a.villages))} for a in body.areas]
    shock_id = str(uuid.uuid4())
    due = body.review_due_on or today + timedelta(days=review_days)
    declared_at = datetime.now(UTC)
    payload = events.ShockDeclaredV1(
        shock_id=shock_id, type=body.type, occurred_on=body.occurred_on, severity=body.severity,
        title=body.title, description=body.description,
        areas=[events.ShockAreaV1.model_validate(a) for a in areas], review_due_on=due,
        declared_at=declared_at.isoformat(), actor=actor_of(user))
    env = outbox.new(type=events.SHOCK_DECLARED, data=jsonable(payload.model_dump(mode="json")),
                     subject=None)
    row = (await session.execute(sa.insert(K).values(
        id=shock_id, type=body.type, occurred_on=body.occurred_on, severity=body.severity,
        title=body.title, description=body.description, areas=areas,
        province_codes=sorted({a["province_code"] for a in areas}),
        commune_codes=[a["commune_code"] for a in areas], review_due_on=due,
        declared_by=actor_of(user) or "", event_id=env.id, declared_at=declared_at,
    ).returning(K))).mappings().one()
    await outbox.add(session, events.TOPIC, env)
    return read_of(row)


def read_of(row: Any) -> schemas.ShockRead:
    """A shock row as the API answers it."""
    return schemas.ShockRead(
        shock_id=row["id"], type=row["type"], occurred_on=row["occurred_on"],
        severity=row["severity"], title=row["title"], description=row["description"],
        areas=[schemas.ShockAreaRead.model_validate(a) for a in row["areas"]],
        review_due_on=row["review_due_on"], declared_by=row["declared_by"],
        declared_at=row["declared_at"], event_id=row["event_id"])


def _scope(user: Principal) -> sa.ColumnElement[bool]:
    codes = user.communes_filter()
    if codes is None:
        return sa.true()
    return sa.or_(K.c.commune_codes.overlap(sa.cast(list(codes), K.c.commune_codes.type)),
                  K.c.province_codes.overlap(sa.cast(list(codes), K.c.province_codes.type)))


async def listing(session: AsyncSession, *, user: Principal, commune_code: str | None,
                  province_code: str | None, limit: int, offset: int) -> list[schemas.ShockRead]:
    """Shocks over the caller's scope, newest first (a commune's: those that hit it)."""
    q = sa.select(K).where(_scope(user))
    if commune_code:
        q = q.where(K.c.commune_codes.any(commune_code))
    if province_code:
        q = q.where(K.c.province_codes.any(province_code))
    rows = (await session.execute(q.order_by(K.c.seq.desc()).limit(limit).offset(offset))
            ).mappings().all()
    return [read_of(r) for r in rows]


async def get(session: AsyncSession, *, user: Principal, shock_id: str) -> schemas.ShockRead:
    """One shock (404 when unknown or outside the caller's scope)."""
    try:
        uuid.UUID(shock_id)
    except ValueError:
        raise problems.not_found("shock", shock_id) from None
    row = (await session.execute(sa.select(K).where(K.c.id == shock_id, _scope(user)))
           ).mappings().first()
    if row is None:
        raise problems.not_found("shock", shock_id)
    return read_of(row)
