"""Survey use cases (immutable surveys; the newest by survey_date is current) and verification
requests from supervision, which a new survey resolves."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas, tables
from services.registry.handlers.common import (
    H,
    S,
    actor_of,
    check_active,
    check_version,
    invalid,
    is_uuid,
    jsonable,
    load,
    member_rows,
    record,
    snapshot,
    survey_read,
    survey_snapshot,
    updated_row,
    violations_or_none,
)
from shared.auth import Principal
from shared.consumer import DeadLetter, EventContext
from shared.envelope import Envelope
from shared.outbox import Outbox


def survey_values(body: schemas.SurveyCreate, *, household_id: str, actor: str | None,
                  import_hash: str | None = None) -> dict[str, Any]:
    """A survey table row from a validated body."""
    facts = body.facts.model_dump(exclude_none=True) if body.facts else {}
    return {"id": str(uuid.uuid4()), "household_id": household_id,
            "survey_date": body.survey_date, "review_round": body.review_round,
            "income_per_capita_vnd": body.income_per_capita_vnd,
            "deprivations": dict(body.deprivations), "facts": jsonable(facts),
            "surveyor": body.surveyor, "notes": body.notes, "recorded_by": actor,
            "import_hash": import_hash, "visit_id": body.visit_id}


def survey_problems(body: schemas.SurveyCreate, *, today: date, prefix: str = ""
                    ) -> list[domain.Violation]:
    """The survey rules (dates, income, indicator codes)."""
    return domain.survey_violations(survey_date=body.survey_date,
                                    income_per_capita_vnd=body.income_per_capita_vnd,
                                    deprivations=body.deprivations, today=today, prefix=prefix)


async def record_survey(*, session: AsyncSession, outbox: Outbox, row: Any,
                        body: schemas.SurveyCreate, actor: str | None,
                        import_id: str | None = None, import_hash: str | None = None,
                        ) -> tuple[Any, Envelope]:
    """Insert the survey, publish `household.surveyed`; resolve pending verification requests."""
    household_id = str(row["id"])
    values = survey_values(body, household_id=household_id, actor=actor, import_hash=import_hash)
    survey = (await session.execute(sa.insert(S).values(**values).returning(*S.c))
              ).mappings().one()
    current_date = None
    if row["current_survey_id"]:
        current_date = await session.scalar(sa.select(S.c.survey_date)
                                            .where(S.c.id == row["current_survey_id"]))
    is_current = current_date is None or body.survey_date >= current_date
    members = await member_rows(session, household_id)
    version = row["version"] + 1
    new = await updated_row(session, household_id, {
        "version": version,
        **({"current_survey_id": survey["id"]} if is_current else {})})
    changes = [{"field": "surveys", "before": None, "after": str(survey["id"])},
               *domain.diff(snapshot(row, members), snapshot(new, members))]
    env = await record(
        session, outbox, household_id=household_id, version=version,
        type=events.HOUSEHOLD_SURVEYED,
        data={"household_id": household_id, "version": version,
              "survey": survey_snapshot(survey), "is_current": is_current,
              "household": snapshot(new, members), "actor": actor, "import_id": import_id},
        changes=changes, actor=actor, reason=f"survey {body.review_round}")
    pending = list(new["verification"] or [])
    if pending:
        ids = [p["complaint_id"] for p in pending]
        version += 1
        resolved = await updated_row(session, household_id, {"version": version,
                                                             "verification": []})
        snap = snapshot(resolved, members)
        await record(
            session, outbox, household_id=household_id, version=version,
            type=events.VERIFICATION_RESOLVED,
            data={"household_id": household_id, "version": version, "complaint_id": ids[0],
                  "complaint_ids": ids, "survey_id": str(survey["id"]), "household": snap,
                  "actor": actor},
            changes=domain.diff(snapshot(new, members), snap), actor=actor,
            reason=f"resolved by survey {survey['id']}")
    return survey, env


async def add(*, session: AsyncSession, outbox: Outbox, household_id: str,
              body: schemas.SurveyCreate, if_match: str | None, user: Principal,
              today: date | None = None) -> schemas.SurveyRead:
    """Record a survey (If-Match optional: surveys only append)."""
    row, _ = await load(session, household_id=household_id, user=user, for_update=True)
    check_version(row, if_match=if_match, required=False)
    check_active(row)
    violations_or_none(survey_problems(body, today=today or date.today()))
    if body.visit_id is not None:
        await check_visit_of(session, household_id=str(row["id"]), visit_id=body.visit_id)
    survey, env = await record_survey(session=session, outbox=outbox, row=row, body=body,
                                      actor=actor_of(user))
    current = await session.scalar(sa.select(H.c.current_survey_id).where(H.c.id == row["id"]))
    read = survey_read(survey, current_id=current)
    return read.model_copy(update={"event_id": env.id})


async def check_visit_of(session: AsyncSession, *, household_id: str, visit_id: str) -> None:
    """422 naming `visit_id` unless it is a visit of this household."""
    found = is_uuid(visit_id) and await session.scalar(
        sa.select(tables.visit.c.id).where(tables.visit.c.id == visit_id,
                                           tables.visit.c.household_id == household_id))
    if not found:
        raise invalid([domain.Violation("visit_id", f"no visit {visit_id} of this household")])


async def list_surveys(*, session: AsyncSession, household_id: str,
                       user: Principal) -> list[schemas.SurveyRead]:
    """Every survey of a household, newest survey_date first (the first one is current)."""
    row, _ = await load(session, household_id=household_id, user=user)
    rows = (await session.execute(sa.select(S).where(S.c.household_id == household_id)
                                  .order_by(S.c.survey_date.desc(), S.c.created_at.desc())
                                  )).mappings().all()
    return [survey_read(s, current_id=row["current_survey_id"]) for s in rows]


async def on_verification_requested(ctx: EventContext, payload: Any) -> None:
    """`supervision.verification_requested.v1` → flag the household; publish our own event."""
    household_id = payload.household_id
    row = None
    if is_uuid(household_id):
        row = (await ctx.session.execute(sa.select(H).where(H.c.id == household_id)
                                         .with_for_update())).mappings().first()
    if row is None:
        raise DeadLetter(f"unknown household {household_id}")
    if row["commune_code"] != payload.commune_code:  # a complaint of one commune flags only its own
        raise DeadLetter(f"household {household_id} is not in commune {payload.commune_code}, "
                         "the complaint's")
    pending = list(row["verification"] or [])
    if any(p["complaint_id"] == payload.complaint_id for p in pending):
        return
    pending.append({"complaint_id": payload.complaint_id, "reason": payload.reason,
                    "requested_at": datetime.now(UTC).isoformat()})
    members = await member_rows(ctx.session, household_id)
    version = row["version"] + 1
    new = await updated_row(ctx.session, household_id, {"version": version,
                                                        "verification": pending})
    snap = snapshot(new, members)
    actor = payload.actor or "supervision"
    await record(
        ctx.session, ctx.outbox, household_id=household_id, version=version,
        type=events.VERIFICATION_REQUESTED,
        data={"household_id": household_id, "version": version,
              "complaint_id": payload.complaint_id, "reason": payload.reason,
              "household": snap, "actor": actor},
        changes=domain.diff(snapshot(row, members), snap), actor=actor,
        reason=f"complaint {payload.complaint_id}: {payload.reason}", causation=ctx.event)
