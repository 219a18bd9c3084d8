"""Eligibility use cases."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.eligibility import schemas, tables
from services.registry import events as registry_events
from shared.auth import Principal
from shared.consumer import EventContext
from shared.problems import Problem


async def on_household_registered(ctx: EventContext,
                                  payload: registry_events.HouseholdRegisteredV1) -> None:
    """Project a newly registered household."""
    h = payload.household
    values = {
        "id": payload.household_id, "area_type": h.area_type,
        "province_code": h.location.province_code,
        "commune_code": h.location.commune_code, "village": h.location.village,
        "registry_version": payload.version, "last_event_id": ctx.event.id,
    }
    stmt = pg_insert(tables.Household).values(**values)
    await ctx.session.execute(stmt.on_conflict_do_update(
        index_elements=[tables.Household.id], set_=values,
        where=tables.Household.registry_version <= payload.version,
    ))


async def get_household(*, session: AsyncSession, household_id: str,
                        actor: Principal) -> schemas.HouseholdRead:
    """Eligibility's view of one household (404 when unknown or out of scope)."""
    h = await session.get(tables.Household, household_id)
    if h is None or not actor.covers(province_code=h.province_code, commune_code=h.commune_code):
        raise Problem(404, f"no household {household_id}")
    return schemas.HouseholdRead(household_id=h.id, area_type=h.area_type,
                                 province_code=h.province_code, commune_code=h.commune_code,
                                 village=h.village, registry_version=h.registry_version,
                                 last_event_id=h.last_event_id)
