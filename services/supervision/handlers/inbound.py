"""Events from every topic: the beneficiary timeline, where households live, and the commune's
provisional classifications (the raw material of a posting)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import events as eligibility_events
from services.registry import events as registry_events
from services.supervision import domain, tables
from shared.consumer import EventContext
from shared.telemetry import trace_id_of

PII_KEYS = frozenset({"national_id", "date_of_birth", "phone", "contact"})


def scrub(value: Any) -> Any:
    """The payload without personal identifiers (the timeline needs none of them)."""
    if isinstance(value, dict):
        if value.get("field") in PII_KEYS:  # a field-level change of an identifier
            return {"field": value["field"]}
        return {k: scrub(v) for k, v in value.items() if k not in PII_KEYS}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def households_of(subject: str | None, data: dict) -> list[str]:
    """The households an event is about: its subject, else the ones a posting lists."""
    if subject:
        return [subject]
    if isinstance(data.get("household_id"), str):
        return [data["household_id"]]
    items = data.get("items")
    if isinstance(items, list):
        return sorted({i["household_id"] for i in items
                       if isinstance(i, dict) and isinstance(i.get("household_id"), str)})
    return []


async def on_event(ctx: EventContext, data: dict) -> None:
    """Any event of any topic: project what it tells, then keep it in the timeline."""
    if ctx.event.type == eligibility_events.CLASSIFICATION_DECIDED:
        await _classification_decided(ctx, data)
    elif ctx.event.type == eligibility_events.CLASSIFICATION_RECOGNIZED:
        await _classification_recognized(ctx, data)
    elif ctx.event.type in registry_events.EVENTS and isinstance(data.get("household"), dict):
        loc = data["household"].get("location") or {}
        if loc.get("commune_code") and loc.get("province_code"):
            await remember_area(ctx.session, household_id=data["household"].get("household_id")
                                or ctx.event.subject, province_code=loc["province_code"],
                                commune_code=loc["commune_code"], village=loc.get("village"))
    await record_timeline(ctx, data)


async def record_timeline(ctx: EventContext, data: dict) -> None:
    """Keep the event in the timeline of every household it is about."""
    event = ctx.event
    households = households_of(event.subject, data)
    if not households:
        return
    vi, en = domain.summarize(event.type, data)
    kept = scrub(data)
    actor = data.get("actor") if isinstance(data.get("actor"), str) else None
    await ctx.session.execute(pg_insert(tables.timeline_entry).values([{
        "household_id": h, "event_id": event.id, "type": event.type, "source": event.source,
        "topic": ctx.topic, "time": event.time, "summary_vi": vi, "summary_en": en,
        "actor": actor, "correlation_id": event.correlation_id,
        "causation_id": event.causation_id, "trace_id": trace_id_of(event.traceparent),
        "data": kept} for h in households]).on_conflict_do_nothing())


async def remember_area(session: AsyncSession, *, household_id: str | None, province_code: str,
                        commune_code: str, village: str | None) -> None:
    """Where a household lives and which province its commune belongs to."""
    await session.execute(pg_insert(tables.commune_area).values(
        commune_code=commune_code, province_code=province_code).on_conflict_do_nothing())
    if not household_id:
        return
    values = {"household_id": household_id, "province_code": province_code,
              "commune_code": commune_code, "village": village}
    await session.execute(pg_insert(tables.household_area).values(**values).on_conflict_do_update(
        index_elements=["household_id"], set_=values))


async def _classification_decided(ctx: EventContext, data: dict) -> None:
    try:
        p = eligibility_events.ClassificationDecidedV1.model_validate(data)
    except ValidationError:
        return  # the timeline still shows it; it cannot enter a posting
    await remember_area(ctx.session, household_id=p.household_id, province_code=p.province_code,
                        commune_code=p.commune_code, village=p.village)
    c = tables.classification
    values = {"household_id": p.household_id, "classification_id": p.classification_id,
              "province_code": p.province_code, "commune_code": p.commune_code,
              "village": p.village, "head_name": p.head_name, "category": p.category,
              "previous_category": p.previous_category, "status": p.status,
              "review_round": p.review_round,
              "explanation": p.explanation.model_dump(mode="json"), "decided_at": p.decided_at,
              "event_id": ctx.event.id}
    excluded = pg_insert(c).excluded
    # A newer decision replaces the household's row; an older one arriving late never does,
    # except to mark that very classification superseded.
    await ctx.session.execute(pg_insert(c).values(**values).on_conflict_do_update(
        index_elements=[c.c.household_id],
        set_={**{k: excluded[k] for k in values if k != "household_id"},
              "updated_at": sa.func.now()},
        where=sa.or_(c.c.decided_at <= excluded.decided_at,
                     c.c.classification_id == excluded.classification_id)))


async def _classification_recognized(ctx: EventContext, data: dict) -> None:
    try:
        p = eligibility_events.ClassificationRecognizedV1.model_validate(data)
    except ValidationError:
        return
    c = tables.classification
    await ctx.session.execute(sa.update(c).where(c.c.classification_id == p.classification_id)
                              .values(status="recognized", updated_at=sa.func.now()))
