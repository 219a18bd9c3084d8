"""Registry use cases: command → domain → tables + outbox, in one transaction."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas, tables
from shared.auth import Principal
from shared.outbox import Outbox
from shared.problems import Problem


def _read(h: tables.Household, event_id: str | None = None) -> schemas.HouseholdRead:
    return schemas.HouseholdRead(
        household_id=h.id, version=h.version, status=h.status, area_type=h.area_type,
        location=schemas.LocationIn(province_code=h.province_code, commune_code=h.commune_code,
                                    village=h.village),
        members=[schemas.MemberRead(member_id=m.id, full_name=m.full_name,
                                    national_id=m.national_id, date_of_birth=m.date_of_birth,
                                    sex=m.sex, relation=m.relation)
                 for m in h.members if m.active],
        event_id=event_id,
    )


async def register(*, session: AsyncSession, outbox: Outbox, body: schemas.HouseholdCreate,
                   actor: Principal, today: date | None = None) -> schemas.HouseholdRead:
    """Record a new household and publish `household.registered`."""
    if not actor.covers(province_code=body.location.province_code,
                        commune_code=body.location.commune_code):
        raise Problem(403, "this location is outside your scope")
    members = [domain.Member(**m.model_dump()) for m in body.members]
    try:
        domain.check_members(members, today=today or date.today())
    except domain.DomainError as exc:
        raise Problem(422, str(exc), errors=[{"field": exc.field, "message": exc.message}]) from exc
    taken = await session.scalar(sa.select(tables.Member.household_id).where(
        tables.Member.national_id.in_([m.national_id for m in members]), tables.Member.active))
    if taken is not None:
        raise Problem(409, "a member's national ID is already registered")
    household = tables.Household(area_type=body.area_type, version=1, status="active",
                                 **body.location.model_dump())
    household.members = [tables.Member(position=i, active=True, **m.model_dump())
                         for i, m in enumerate(body.members)]
    session.add(household)
    await session.flush()
    read = _read(household)
    snapshot = events.HouseholdSnapshotV1(
        household_id=household.id, version=1, area_type=body.area_type,
        location=events.Location(**body.location.model_dump()),
        head_name=next(m.full_name for m in body.members if m.relation == "head"),
        members=[events.MemberV1(**m.model_dump()) for m in read.members],
    )
    payload = events.HouseholdRegisteredV1(household_id=household.id, version=1,
                                           household=snapshot, actor=actor.sub)
    env = outbox.new(type=events.HOUSEHOLD_REGISTERED, data=payload.model_dump(mode="json"),
                     subject=household.id)
    await outbox.add(session, events.TOPIC, env)
    read.event_id = env.id
    return read


async def get(*, session: AsyncSession, household_id: str, actor: Principal) -> schemas.HouseholdRead:
    """One household, if it is inside the caller's scope (404 otherwise)."""
    household = await session.get(tables.Household, household_id)
    if household is None or not actor.covers(province_code=household.province_code,
                                             commune_code=household.commune_code):
        raise Problem(404, f"no household {household_id}")
    return _read(household)
