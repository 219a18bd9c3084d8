"""Events from every topic: the beneficiary timeline, where households live, and the commune's
provisional classifications (the raw material of a posting)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.eligibility import events as eligibility_events
from services.registry import events as registry_events
from services.supervision import domain, tables
from shared.consumer import BatchContext
from shared.db import write_rows
from shared.envelope import Envelope
from shared.telemetry import trace_id_of

PII_KEYS = frozenset({"national_id", "date_of_birth", "phone", "contact"})


def scrub(value: Any) -> Any:
    """The payload without personal identifiers (the timeline needs none of them)."""
    if isinstance(value, dict):
        field = value.get("field")
        # A field-level change of an identifier: `phone`, or a member's, which the registry's
        # diff names by path (`members.<member_id>.national_id`).
        if isinstance(field, str) and field.rsplit(".", 1)[-1] in PII_KEYS:
            return {"field": field}
        return {k: scrub(v) if isinstance(v, dict | list) else v
                for k, v in value.items() if k not in PII_KEYS}
    if isinstance(value, list):
        return [scrub(v) if isinstance(v, dict | list) else v for v in value]
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


async def on_events(ctx: BatchContext) -> None:
    """A batch of events of any topic: project what they tell, then keep each in the timeline
    of every household it is about — a constant number of statements for the whole batch."""
    areas: dict[str, Row] = {}
    communes: dict[str, str] = {}
    decided: dict[str, Row] = {}
    recognized: list[str] = []
    entries: list[Row] = []
    shocks: list[tuple[str, Envelope, dict]] = []
    for item in ctx.items:
        event, data = item.event, item.payload
        if event.type == registry_events.SHOCK_DECLARED:
            shocks.append((item.topic, event, data))
        if event.type == eligibility_events.CLASSIFICATION_DECIDED:
            values = _decided_values(event, data)
            if values is not None:
                _remember(areas, communes, household_id=values["household_id"],
                          province_code=values["province_code"],
                          commune_code=values["commune_code"], village=values["village"])
                kept = decided.get(values["household_id"])
                # A newer decision replaces the household's row; an older one never does,
                # except to mark that very classification superseded.
                if kept is None or kept["decided_at"] <= values["decided_at"] or (
                        kept["classification_id"] == values["classification_id"]):
                    decided[values["household_id"]] = values
        elif event.type == eligibility_events.CLASSIFICATION_RECOGNIZED:
            try:
                p = eligibility_events.ClassificationRecognizedV1.model_validate(data)
            except ValidationError:
                pass  # the timeline still shows it
            else:
                recognized.append(p.classification_id)
        elif event.type in registry_events.EVENTS and isinstance(data.get("household"), dict):
            loc = data["household"].get("location") or {}
            if loc.get("commune_code") and loc.get("province_code"):
                _remember(areas, communes,
                          household_id=data["household"].get("household_id") or event.subject,
                          province_code=loc["province_code"], commune_code=loc["commune_code"],
                          village=loc.get("village"))
        entries.extend(_timeline_rows(item.topic, event, data))
    session = ctx.session
    # Each statement is compiled once and run for all rows (executemany: insertmanyvalues).
    if communes:
        await session.execute(pg_insert(tables.commune_area).on_conflict_do_nothing(),
                              [{"commune_code": c, "province_code": p}
                               for c, p in sorted(communes.items())])
    if areas:
        stmt = pg_insert(tables.household_area)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["household_id"],
            set_={k: stmt.excluded[k] for k in ("province_code", "commune_code", "village")}),
            list(areas.values()))
    if decided:
        c = tables.classification
        stmt = pg_insert(c)
        excluded = stmt.excluded
        await session.execute(stmt.on_conflict_do_update(
            index_elements=[c.c.household_id],
            set_={**{k: excluded[k] for k in _DECIDED_COLUMNS if k != "household_id"},
                  "updated_at": sa.func.now()},
            where=sa.or_(c.c.decided_at <= excluded.decided_at,
                         c.c.classification_id == excluded.classification_id)),
            list(decided.values()))
    if recognized:
        c = tables.classification
        await session.execute(sa.update(c).where(
            c.c.classification_id == sa.func.any(sa.literal(recognized, ARRAY(sa.Text))))
            .values(status="recognized", updated_at=sa.func.now()))
    # No conflict handling: the inbox already made each event new to this consumer.
    await write_rows(session, tables.timeline_entry, entries)
    for topic, event, data in shocks:
        await _shock_entries(session, topic, event, data)


Row = dict[str, Any]

# A declared shock is about an area, not a household: it goes on the timeline of every
# household supervision knows there (whole communes, or the named villages), in one statement.
_SHOCK_ENTRIES = sa.text("""
    INSERT INTO timeline_entry (household_id, event_id, type, source, topic, time, summary_vi,
                                summary_en, actor, correlation_id, causation_id, trace_id, data)
    SELECT a.household_id, :event_id, :type, :source, :topic, :time, :vi, :en, :actor,
           :correlation_id, :causation_id, :trace_id, CAST(:data AS jsonb)
    FROM household_area a
    WHERE a.commune_code = ANY(CAST(:whole AS text[]))
       OR (a.commune_code, a.village) IN (
           SELECT c, v FROM unnest(CAST(:pair_communes AS text[]),
                                   CAST(:pair_villages AS text[])) AS u(c, v))
    ON CONFLICT (event_id, household_id) DO NOTHING
""")


async def _shock_entries(session: Any, topic: str, event: Envelope, data: dict) -> None:
    areas = [a for a in data.get("areas") or () if isinstance(a, dict)
             and isinstance(a.get("commune_code"), str)]
    whole = [a["commune_code"] for a in areas if not a.get("villages")]
    pairs = [(a["commune_code"], str(v)) for a in areas for v in a.get("villages") or ()]
    vi, en = domain.summarize(event.type, data)
    await session.execute(_SHOCK_ENTRIES, {
        "event_id": event.id, "type": event.type, "source": event.source, "topic": topic,
        "time": event.time, "vi": vi, "en": en,
        "actor": data.get("actor") if isinstance(data.get("actor"), str) else None,
        "correlation_id": event.correlation_id, "causation_id": event.causation_id,
        "trace_id": trace_id_of(event.traceparent), "data": json.dumps(scrub(data), default=str),
        "whole": whole, "pair_communes": [c for c, _ in pairs],
        "pair_villages": [v for _, v in pairs]})


_DECIDED_COLUMNS = ("household_id", "classification_id", "province_code", "commune_code",
                    "village", "head_name", "category", "previous_category", "status",
                    "review_round", "explanation", "decided_at", "event_id")


def _remember(areas: dict[str, Row], communes: dict[str, str], *, household_id: str | None,
              province_code: str, commune_code: str, village: str | None) -> None:
    communes[commune_code] = province_code
    if household_id:
        areas[household_id] = {"household_id": household_id, "province_code": province_code,
                               "commune_code": commune_code, "village": village}


def _decided_values(event: Envelope, data: dict) -> Row | None:
    try:
        p = eligibility_events.ClassificationDecidedV1.model_validate(data)
    except ValidationError:
        return None  # the timeline still shows it; it cannot enter a posting
    return {"household_id": p.household_id, "classification_id": p.classification_id,
            "province_code": p.province_code, "commune_code": p.commune_code,
            "village": p.village, "head_name": p.head_name, "category": p.category,
            "previous_category": p.previous_category, "status": p.status,
            "review_round": p.review_round,
            "explanation": p.explanation.model_dump(mode="json"), "decided_at": p.decided_at,
            "event_id": event.id}


def _timeline_rows(topic: str, event: Envelope, data: dict) -> list[Row]:
    """The event's timeline entry for every household it is about."""
    households = households_of(event.subject, data)
    if not households:
        return []
    vi, en = domain.summarize(event.type, data)
    kept = scrub(data)
    actor = data.get("actor") if isinstance(data.get("actor"), str) else None
    return [{"household_id": h, "event_id": event.id, "type": event.type, "source": event.source,
             "topic": topic, "time": event.time, "summary_vi": vi, "summary_en": en,
             "actor": actor, "correlation_id": event.correlation_id,
             "causation_id": event.causation_id, "trace_id": trace_id_of(event.traceparent),
             "data": _own_part(kept, h) if len(households) > 1 else kept} for h in households]


def _own_part(data: dict, household_id: str) -> dict:
    """A posting-level event as one household's timeline keeps it: its own item (and exclusion),
    not the whole list (up to `posting_approval_part_size` items) once per household."""
    out = dict(data)
    for key in ("items", "excluded"):
        listed = data.get(key)
        if isinstance(listed, list):
            out[key] = [i for i in listed
                        if isinstance(i, dict) and i.get("household_id") == household_id]
            out[f"{key}_in_part"] = len(listed)
    return out
