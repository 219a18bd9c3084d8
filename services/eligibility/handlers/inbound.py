"""Events from elsewhere: the registry's household snapshots (inputs) and supervision's approval
of a commune's posting (recognition)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from services.eligibility import domain, events, tables
from services.eligibility.handlers import reviews, rulesets
from services.eligibility.handlers.common import Service
from services.eligibility.handlers.deciding import (
    DECISION_COLUMNS,
    Row,
    Trigger,
    json_or_none,
    redecide,
    refresh,
    standing_of,
    write_decisions,
)
from services.registry import events as registry_events
from services.supervision import events as supervision_events
from shared.consumer import BatchContext, EventContext

log = logging.getLogger("everydoor.eligibility")

H = tables.household
C = tables.classification

# Registry events whose change is an input of the decision; the others only refresh the snapshot.
ALWAYS_INPUT = {registry_events.HOUSEHOLD_SURVEYED, registry_events.MEMBER_ADDED,
                registry_events.MEMBER_REMOVED, registry_events.MEMBER_UPDATED,
                registry_events.HOUSEHOLD_ARCHIVED}
INPUT_FIELDS = ("area_type", "province_code", "status")


def _snapshot_values(payload: Any, event_id: str) -> Row:
    h: registry_events.HouseholdSnapshotV1 = payload.household
    return {"id": payload.household_id, "area_type": h.area_type,
            "province_code": h.location.province_code, "commune_code": h.location.commune_code,
            "village": h.location.village, "head_name": h.head_name, "status": h.status,
            "member_count": len(h.members), "registry_version": payload.version,
            "last_event_id": event_id}


async def on_registry_events(svc: Service, ctx: BatchContext) -> None:
    """A batch of registry events: one locked load of their households, the snapshots applied in
    order in memory (older versions skipped), one upsert, and one re-decision of every household
    whose inputs changed (triggered by its last input-changing event)."""
    session = ctx.session
    ids = sorted({item.payload.household_id for item in ctx.items})
    before = {r["id"]: dict(r) for r in (await session.execute(
        sa.select(H).where(H.c.id == sa.func.any(sa.literal(ids, ARRAY(sa.Text))))
        .order_by(H.c.id).with_for_update())).mappings()}
    state = {k: dict(v) for k, v in before.items()}
    triggers: dict[str, Trigger] = {}
    surveys: dict[str, tuple[registry_events.HouseholdSurveyedV1, Any]] = {}
    for item in ctx.items:
        payload = item.payload
        current = state.get(payload.household_id)
        if current is not None and current["registry_version"] >= payload.version:
            continue  # an older snapshot than the one applied: nothing new
        values = _snapshot_values(payload, item.event.id)
        survey_changed = False
        if isinstance(payload, registry_events.HouseholdSurveyedV1) and payload.is_current:
            values |= _survey_values(payload, item.event.id)
            survey_changed = True
            surveys[payload.household_id] = (payload, item.event)
        merged = (current or _EMPTY_ROW) | values  # a new household has nothing else yet
        if survey_changed or (current is not None and (
                item.event.type in ALWAYS_INPUT
                or any(current[f] != merged[f] for f in INPUT_FIELDS))):
            triggers[payload.household_id] = Trigger(event=item.event)
        state[payload.household_id] = merged
    decided = None
    if triggers:
        # Decided in memory first, so each household is written once: its snapshot and its
        # decision columns in the one upsert below.
        await rulesets.sync(session, svc)
        decided = redecide(svc, [state[h] for h in ids if h in triggers], trigger=triggers)
        for row in decided.rows:
            state[row["id"]] = row
    changed = [state[h] for h in ids if state.get(h) != before.get(h)]
    if changed:
        await session.execute(_UPSERT, {
            c: [_param(c, row[c]) for row in changed] for c in _UPSERT_COLUMNS})
    await reviews.close_reviews(svc, ctx, surveys)
    if decided is not None:
        await write_decisions(session, svc, decided, households=False)


_EMPTY_ROW: Row = {c.name: None for c in H.c}
_SNAPSHOT_COLUMNS = ("area_type", "province_code", "commune_code", "village", "head_name",
                     "status", "member_count", "registry_version", "last_event_id", "survey",
                     "survey_date", "survey_event_id")
_UPSERT_COLUMNS = ("id", *_SNAPSHOT_COLUMNS, *DECISION_COLUMNS)
_JSONB = {"survey", "programs"}


def _param(column: str, value: Any) -> Any:
    return json_or_none(value) if column in _JSONB else value


def _upsert_sql() -> sa.TextClause:
    """One statement for a batch's households (arrays unnested): their snapshots, and their
    decision columns (unchanged ones written back as they were read, under the row lock)."""
    types = {c.name: c.type.compile(dialect=postgresql.dialect()) for c in H.c}
    arrays = ", ".join(f"CAST(:{c} AS {'TEXT' if c in _JSONB else types[c]}[])"
                       for c in _UPSERT_COLUMNS)
    values = ", ".join(f"CAST(u.{c} AS JSONB)" if c in _JSONB else f"u.{c}"
                       for c in _UPSERT_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _UPSERT_COLUMNS if c != "id")
    return sa.text(
        f"INSERT INTO household ({', '.join(_UPSERT_COLUMNS)}, updated_at) "
        f"SELECT {values}, now() FROM unnest({arrays}) AS u({', '.join(_UPSERT_COLUMNS)}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}, updated_at = now()")


_UPSERT = _upsert_sql()


def _survey_values(payload: registry_events.HouseholdSurveyedV1, event_id: str) -> Row:
    s = payload.survey
    return {"survey": {"survey_id": s.survey_id, "survey_date": s.survey_date.isoformat(),
                       "review_round": s.review_round,
                       "income_per_capita_vnd": s.income_per_capita_vnd,
                       "deprivations": s.deprivations},
            "survey_date": s.survey_date, "survey_event_id": event_id}


async def on_posting_approved(svc: Service, ctx: EventContext,
                              p: supervision_events.PostingApprovedV1) -> None:
    """The commune chair approved a posting: its provisional classifications become recognized,
    transitions are recorded, and programme eligibility follows."""
    session = ctx.session
    on = svc.local_date(p.approved_at)
    for item in p.items:
        try:
            classification_id = str(uuid.UUID(item.classification_id))
        except ValueError:
            log.warning("posting %s: %r is not a classification id", p.posting_id,
                        item.classification_id)
            continue
        household = (await session.execute(sa.select(H).where(H.c.id == item.household_id)
                                           .with_for_update())).mappings().first()
        cls = (await session.execute(sa.select(C).where(C.c.id == classification_id)
                                     .with_for_update())).mappings().first()
        if household is None or cls is None or cls["household_id"] != item.household_id:
            log.warning("posting %s: unknown classification %s of household %s", p.posting_id,
                        classification_id, item.household_id)
            continue
        if cls["status"] != "provisional" or cls["category"] == "incomplete":
            # Already recognized (a repeat), superseded by a later decision (that one goes on a
            # later posting), or incomplete (cannot be recognized): nothing to do.
            continue
        await _recognize(svc, ctx, p, dict(household), dict(cls), on)


async def _recognize(svc: Service, ctx: EventContext, p: supervision_events.PostingApprovedV1,
                     household: Row, cls: Row, on: Any) -> None:
    session = ctx.session
    before = standing_of(household)
    deprived = tuple(d["code"] for d in cls["explanation"].get("deprived", []))
    after, transition = domain.recognize(before, category=cls["category"], deprived=deprived,
                                         ruleset_id=cls["ruleset_id"], on=on,
                                         just_escaped_months=svc.catalogue.just_escaped_months)
    await session.execute(sa.update(C).where(C.c.id == cls["id"]).values(
        status="recognized", recognized_at=p.approved_at, posting_id=p.posting_id))
    previous_id = household["recognized_classification_id"]
    if previous_id is not None:
        await session.execute(sa.update(C).where(C.c.id == previous_id).values(
            status="superseded", superseded_at=sa.func.now(), superseded_by=cls["id"]))
    if transition is not None:
        await session.execute(sa.insert(tables.transition).values(
            household_id=household["id"], kind=transition.kind,
            from_category=transition.from_category, to_category=transition.to_category,
            from_classification_id=previous_id, to_classification_id=cls["id"],
            occurred_on=transition.on, just_escaped_until=transition.just_escaped_until,
            posting_id=p.posting_id))
    standing = {"recognized_classification_id": cls["id"], "recognized_category": after.category,
                "recognized_on": after.recognized_on, "recognized_deprived": list(after.deprived),
                "recognized_ruleset_id": after.ruleset_id,
                "escaped_poverty_on": after.escaped_poverty_on,
                "just_escaped_until": after.just_escaped_until}
    await session.execute(sa.update(H).where(H.c.id == household["id"])
                          .values(**standing, updated_at=sa.func.now()))
    data = events.ClassificationRecognizedV1(
        classification_id=cls["id"], household_id=household["id"], category=cls["category"],
        posting_id=p.posting_id, recognized_at=p.approved_at,
        transition=transition.kind if transition else None,  # type: ignore[arg-type]
        just_escaped_until=after.just_escaped_until, commune_code=household["commune_code"],
        previous_category=before.category,  # type: ignore[arg-type]
        province_code=household["province_code"], village=household["village"],
        head_name=household["head_name"], escaped_poverty_on=after.escaped_poverty_on,
    ).model_dump(mode="json")
    await ctx.emit(events.TOPIC, type=events.CLASSIFICATION_RECOGNIZED, data=data,
                   subject=household["id"])
    await refresh(session, svc, [household | standing], trigger=Trigger(event=ctx.event))
