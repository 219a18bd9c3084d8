"""Household use cases: register, read, list, change, archive, history."""

from __future__ import annotations

import base64
import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas
from services.registry.handlers.common import (
    H,
    M,
    S,
    V,
    actor_of,
    change_view,
    check_active,
    check_location,
    check_version,
    communes,
    household_read,
    household_view,
    invalid,
    load,
    member_rows,
    national_id_conflicts,
    possible_duplicates,
    record,
    scope_clause,
    search_text,
    sees_personal_data,
    snapshot,
    unique_or_409,
    updated_row,
    violations_or_none,
)
from shared.auth import Principal
from shared.db import BIGINT_MAX
from shared.outbox import Outbox
from shared.problems import Problem


def member_row(m: dict[str, Any], *, household_id: str, position: int) -> dict[str, Any]:
    """A member table row from a validated member body."""
    return {"id": str(uuid.uuid4()), "household_id": household_id, "position": position,
            "full_name": m["full_name"], "name_key": domain.normalise_name(m["full_name"]),
            "national_id": m["national_id"], "date_of_birth": m["date_of_birth"],
            "sex": m["sex"], "relation": m["relation"], "ethnicity": m.get("ethnicity"),
            "disability": m.get("disability"), "active": True, "removed_at": None,
            "removed_reason": None}


def check_scope(user: Principal, location: schemas.LocationIn) -> None:
    """403 when the caller may not write in this location."""
    if not user.covers(province_code=location.province_code, commune_code=location.commune_code):
        raise Problem(403, f"commune {location.commune_code} is outside your scope")


async def register(*, session: AsyncSession, outbox: Outbox, body: schemas.HouseholdCreate,
                   user: Principal, today: date | None = None) -> schemas.HouseholdRead:
    """Record a new household and publish `household.registered` (one transaction)."""
    members = [m.model_dump() for m in body.members]
    violations_or_none(domain.member_violations(members, today=today or date.today()))
    default_area = await check_location(session, body.location)
    check_scope(user, body.location)
    if body.external_ref:
        taken = (await session.execute(sa.select(H.c.id, H.c.province_code, H.c.commune_code)
                                       .where(H.c.external_ref == body.external_ref))).first()
        if taken is not None:
            named = f" by household {taken.id}" if user.covers_row(taken) else ""
            raise Problem(409, f"external_ref {body.external_ref} is already registered{named}",
                          errors=[{"field": "external_ref", "message": "already registered"}])
    await national_id_conflicts(
        session, national_ids=[m["national_id"] for m in members], user=user,
        fields=[f"members.{i}.national_id" for i in range(len(members))])
    household_id = str(uuid.uuid4())
    rows = [member_row(m, household_id=household_id, position=i) for i, m in enumerate(members)]
    duplicates = await possible_duplicates(
        session, commune_code=body.location.commune_code,
        people=[(r["name_key"], r["date_of_birth"]) for r in rows])
    head = next(m["full_name"] for m in members if m["relation"] == domain.HEAD)
    values = {"id": household_id, "external_ref": body.external_ref,
              "area_type": body.area_type or default_area, **body.location.model_dump(),
              "address": body.address, "phone": body.phone, "head_name": head,
              "search_text": search_text(rows), "status": "active", "version": 1,
              "possible_duplicates": duplicates, "created_by": actor_of(user)}
    async with unique_or_409("members"):
        row = (await session.execute(sa.insert(H).values(**values).returning(*H.c))
               ).mappings().one()
        await session.execute(sa.insert(M), rows)
    snap = snapshot(row, rows)
    env = await record(
        session, outbox, household_id=household_id, version=1, type=events.HOUSEHOLD_REGISTERED,
        data={"household_id": household_id, "version": 1, "household": snap,
              "possible_duplicates": duplicates, "actor": actor_of(user)},
        changes=domain.diff(None, snap), actor=actor_of(user), reason=None)
    return household_read(row, rows, event_id=env.id)


async def get(*, session: AsyncSession, household_id: str,
              user: Principal) -> schemas.HouseholdRead | schemas.HouseholdReadMasked:
    """One household with its current survey in the caller's view (404 when unknown or outside
    scope)."""
    row, members = await load(session, household_id=household_id, user=user)
    survey = None
    if row["current_survey_id"]:
        survey = (await session.execute(sa.select(S).where(S.c.id == row["current_survey_id"]))
                  ).mappings().first()
    return household_view(household_read(row, members, survey=survey), user)


def encode_cursor(seq: int) -> str:
    """Opaque cursor."""
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position a cursor stands for (422 when it is not one of ours)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("s") and text[1:].isascii() and text[1:].isdigit() \
                and int(text[1:]) <= BIGINT_MAX:
            return int(text[1:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise invalid([domain.Violation("cursor", "not a cursor returned by this API")])


async def search(*, session: AsyncSession, user: Principal, commune_code: str | None = None,
                 village: str | None = None, area_type: str | None = None,
                 status: str | None = None, q: str | None = None,
                 verification_requested: bool | None = None,
                 possible_duplicate: bool | None = None, cursor: str | None = None,
                 limit: int = 50) -> schemas.HouseholdPage:
    """Households in the caller's scope and view, filtered, in registration order, one page at a
    time."""
    query = sa.select(H).order_by(H.c.seq).limit(limit + 1)
    query = query.where(scope_clause(user))
    if commune_code:
        query = query.where(H.c.commune_code == commune_code)
    if village:
        query = query.where(H.c.village == village)
    if area_type:
        query = query.where(H.c.area_type == area_type)
    if status:
        query = query.where(H.c.status == status)
    if q and domain.normalise_name(q):
        needle = domain.normalise_name(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(H.c.search_text.like(f"%{needle}%", escape="\\"))
    if verification_requested is not None:
        has = sa.func.jsonb_array_length(H.c.verification) > 0
        query = query.where(has if verification_requested else sa.not_(has))
    if possible_duplicate is not None:
        has = sa.func.jsonb_array_length(H.c.possible_duplicates) > 0
        query = query.where(has if possible_duplicate else sa.not_(has))
    if cursor:
        query = query.where(H.c.seq > decode_cursor(cursor))
    rows = list((await session.execute(query)).mappings().all())
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [r["id"] for r in rows]
    members: dict[str, list[Any]] = {str(i): [] for i in ids}
    surveys: dict[str, Any] = {}
    if ids:
        for m in (await session.execute(sa.select(M).where(M.c.household_id.in_(ids))
                                        .order_by(M.c.household_id, M.c.position))).mappings():
            members[str(m["household_id"])].append(m)
        current = [r["current_survey_id"] for r in rows if r["current_survey_id"]]
        if current:
            for s in (await session.execute(sa.select(S).where(S.c.id.in_(current)))).mappings():
                surveys[str(s["household_id"])] = s
    return schemas.HouseholdPage(
        items=[household_view(household_read(r, members[str(r["id"])],
                                             survey=surveys.get(str(r["id"]))), user)
               for r in rows],
        next_cursor=encode_cursor(rows[-1]["seq"]) if more and rows else None)


async def update(*, session: AsyncSession, outbox: Outbox, household_id: str,
                 body: schemas.HouseholdUpdate, if_match: str | None,
                 user: Principal) -> schemas.HouseholdRead:
    """Change household fields (If-Match required); publish `household.updated` with the diff."""
    row, members = await load(session, household_id=household_id, user=user, for_update=True)
    check_version(row, if_match=if_match, required=True)
    check_active(row)
    given = body.model_fields_set - {"reason"}
    values: dict[str, Any] = {}
    if "location" in given:
        if body.location is None:
            raise invalid([domain.Violation("location", "may not be null")])
        await check_location(session, body.location)
        check_scope(user, body.location)
        values.update(body.location.model_dump())
    if "area_type" in given:
        if body.area_type is None:
            raise invalid([domain.Violation("area_type", "may not be null")])
        values["area_type"] = body.area_type
    for name in ("address", "phone"):
        if name in given:
            values[name] = getattr(body, name)
    before = snapshot(row, members)
    after = snapshot({**row, **values}, members)
    changes = domain.diff(before, after)
    if not changes:
        return household_read(row, members)
    version = row["version"] + 1
    new = await updated_row(session, household_id, {**values, "version": version})
    snap = snapshot(new, members)
    env = await record(
        session, outbox, household_id=household_id, version=version,
        type=events.HOUSEHOLD_UPDATED,
        data={"household_id": household_id, "version": version, "changes": changes,
              "reason": body.reason, "household": snap, "actor": actor_of(user)},
        changes=changes, actor=actor_of(user), reason=body.reason)
    return household_read(new, members, event_id=env.id)


async def archive(*, session: AsyncSession, outbox: Outbox, household_id: str,
                  body: schemas.Archive, if_match: str | None,
                  user: Principal) -> schemas.HouseholdRead:
    """Archive a household (moved, dissolved, deceased head…); its members' IDs are released."""
    row, members = await load(session, household_id=household_id, user=user, for_update=True)
    check_version(row, if_match=if_match, required=False)
    check_active(row)
    version = row["version"] + 1
    new = await updated_row(session, household_id, {"status": "archived", "version": version,
                                                    "archive_reason": body.reason})
    await session.execute(sa.update(M).where(M.c.household_id == household_id)
                          .values(active=False))
    members = await member_rows(session, household_id)
    before, snap = snapshot(row, members), snapshot(new, members)
    changes = domain.diff(before, snap)
    env = await record(
        session, outbox, household_id=household_id, version=version,
        type=events.HOUSEHOLD_ARCHIVED,
        data={"household_id": household_id, "version": version, "reason": body.reason,
              "household": snap, "actor": actor_of(user)},
        changes=changes, actor=actor_of(user), reason=body.reason)
    return household_read(new, members, event_id=env.id)


async def history(*, session: AsyncSession, household_id: str,
                  user: Principal) -> list[schemas.HistoryEntry]:
    """Every version: field-level before/after (personal values redacted for readers), actor,
    reason, time, and the event id."""
    await load(session, household_id=household_id, user=user)
    full = sees_personal_data(user)
    rows = (await session.execute(sa.select(V).where(V.c.household_id == household_id)
                                  .order_by(V.c.version))).mappings().all()
    return [schemas.HistoryEntry(version=r["version"], event_id=str(r["event_id"]),
                                 event_type=r["event_type"], actor=r["actor"], reason=r["reason"],
                                 at=r["at"],
                                 changes=[change_view(c, full=full) for c in r["changes"]])
            for r in rows]


__all__ = ["archive", "communes", "get", "history", "register", "search", "update"]
