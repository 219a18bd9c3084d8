"""The beneficiary timeline: every event about a household, in order or as a causal tree."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.supervision import schemas, tables
from services.supervision.handlers.inbound import scrub
from shared.auth import Principal
from shared.problems import not_found

T = tables.timeline_entry


async def timeline(session: AsyncSession, *, household_id: str, user: Principal,
                   tree: bool = False) -> schemas.Timeline:
    """A household's events in order (or nested under their causes); 404 outside the scope."""
    area = (await session.execute(sa.select(tables.household_area).where(
        tables.household_area.c.household_id == household_id))).first()
    allowed = user.national if area is None else user.covers(
        province_code=area.province_code, commune_code=area.commune_code)
    if not allowed:
        raise not_found("timeline for household", household_id)
    rows = (await session.execute(sa.select(T).where(T.c.household_id == household_id)
                                  .order_by(T.c.time, T.c.id))).all()
    if not rows:
        raise not_found("timeline for household", household_id)
    items = [schemas.TimelineEvent(
        event_id=r.event_id, time=r.time, type=r.type, source=r.source,
        summary={"vi": r.summary_vi, "en": r.summary_en}, actor=r.actor,
        correlation_id=r.correlation_id, causation_id=r.causation_id, trace_id=r.trace_id,
        data=scrub(r.data))  # again on read: entries kept before scrub knew member paths
        for r in rows]
    if tree:
        by_id = {i.event_id: i for i in items}
        roots: list[schemas.TimelineEvent] = []
        for item in items:
            parent = by_id.get(item.causation_id or "")
            (parent.children if parent is not None and parent is not item else roots).append(item)
        items = roots
    return schemas.Timeline(household_id=household_id, events=items)
