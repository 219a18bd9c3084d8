"""Supervision use cases."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.supervision import domain, schemas, tables
from shared.auth import Principal
from shared.consumer import EventContext
from shared.problems import Problem
from shared.telemetry import trace_id_of


async def record_timeline(ctx: EventContext, data: dict) -> None:
    """Keep any household event in the beneficiary timeline."""
    event = ctx.event
    household_id = event.subject or data.get("household_id")
    if not household_id:
        return
    vi, en = domain.summarize(event.type, data)
    await ctx.session.execute(pg_insert(tables.TimelineEntry).values(
        household_id=household_id, event_id=event.id, type=event.type, source=event.source,
        topic=ctx.topic, time=event.time, summary_vi=vi, summary_en=en, actor=data.get("actor"),
        correlation_id=event.correlation_id, causation_id=event.causation_id,
        trace_id=trace_id_of(event.traceparent), data=data,
    ).on_conflict_do_nothing(index_elements=["event_id"]))


async def timeline(*, session: AsyncSession, household_id: str, actor: Principal,
                   tree: bool = False) -> schemas.Timeline:
    """A household's events in order (or nested under their causes)."""
    rows = (await session.scalars(
        sa.select(tables.TimelineEntry).where(tables.TimelineEntry.household_id == household_id)
        .order_by(tables.TimelineEntry.time, tables.TimelineEntry.id)
    )).all()
    if not rows:
        raise Problem(404, f"no timeline for household {household_id}")
    items = [schemas.TimelineEvent(
        event_id=r.event_id, time=r.time, type=r.type, source=r.source,
        summary={"vi": r.summary_vi, "en": r.summary_en}, actor=r.actor,
        correlation_id=r.correlation_id, causation_id=r.causation_id, trace_id=r.trace_id)
        for r in rows]
    if tree:
        by_id = {i.event_id: i for i in items}
        roots: list[schemas.TimelineEvent] = []
        for item in items:
            parent = by_id.get(item.causation_id or "")
            (parent.children if parent else roots).append(item)
        items = roots
    return schemas.Timeline(household_id=household_id, events=items)
