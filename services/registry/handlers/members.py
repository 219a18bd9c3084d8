"""Member use cases: add, edit, remove (If-Match and a reason, one version each)."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas
from services.registry.handlers.common import (
    M,
    actor_of,
    check_active,
    check_version,
    household_read,
    invalid,
    is_uuid,
    load,
    member_rows,
    member_snapshot,
    national_id_conflicts,
    possible_duplicates,
    record,
    search_text,
    snapshot,
    unique_or_409,
    updated_row,
    violations_or_none,
)
from services.registry.handlers.households import member_row
from shared.auth import Principal
from shared.outbox import Outbox
from shared.problems import Problem


def _current(members: list[Any]) -> list[Any]:
    return [m for m in members if m["removed_at"] is None]


async def _commit(session: AsyncSession, outbox: Outbox, *, row: Any, before_members: list[Any],
                  member_id: str, type: str, reason: str, user: Principal,
                  extra_values: dict[str, Any] | None = None) -> schemas.HouseholdRead:
    """Bump the version, recompute derived fields, write history and the member event."""
    household_id = str(row["id"])
    members = await member_rows(session, household_id)
    current = _current(members)
    head = next(m["full_name"] for m in current if m["relation"] == domain.HEAD)
    version = row["version"] + 1
    new = await updated_row(session, household_id, {
        "version": version, "head_name": head, "search_text": search_text(current),
        **(extra_values or {})})
    before, snap = snapshot(row, before_members), snapshot(new, members)
    changes = domain.diff(before, snap)
    member = next(m for m in members if str(m["id"]) == member_id)
    member_changes = [{"field": c["field"].split(".", 2)[2], "before": c["before"],
                       "after": c["after"]}
                      for c in changes if c["field"].startswith(f"members.{member_id}.")]
    env = await record(
        session, outbox, household_id=household_id, version=version, type=type,
        data={"household_id": household_id, "version": version,
              "member": member_snapshot(member), "changes": member_changes, "reason": reason,
              "household": snap, "actor": actor_of(user)},
        changes=changes, actor=actor_of(user), reason=reason)
    return household_read(new, members, event_id=env.id)


async def add(*, session: AsyncSession, outbox: Outbox, household_id: str,
              body: schemas.MemberAdd, if_match: str | None, user: Principal,
              today: date | None = None) -> schemas.HouseholdRead:
    """Add a member; publish `household.member_added`."""
    row, members = await load(session, household_id=household_id, user=user, for_update=True)
    check_version(row, if_match=if_match, required=True)
    check_active(row)
    data = body.model_dump(exclude={"reason"})
    current = _current(members)
    bad = domain.birth_violations(data["date_of_birth"], today=today or date.today(),
                                  field="date_of_birth")
    bad += domain.head_after([*current, data])
    if len(current) >= 60:
        bad.append(domain.Violation("members", "a household has at most 60 members"))
    violations_or_none(bad)
    await national_id_conflicts(session, national_ids=[data["national_id"]], user=user,
                                fields=["national_id"])
    new_member = member_row(data, household_id=household_id,
                            position=max((m["position"] for m in members), default=-1) + 1)
    async with unique_or_409("national_id"):
        await session.execute(sa.insert(M).values(**new_member))
    dups = await possible_duplicates(
        session, commune_code=row["commune_code"],
        people=[(new_member["name_key"], new_member["date_of_birth"])],
        exclude_household=household_id)
    extra = {}
    if dups:
        extra["possible_duplicates"] = sorted({*row["possible_duplicates"], *dups})
    return await _commit(session, outbox, row=row, before_members=members,
                         member_id=new_member["id"], type=events.MEMBER_ADDED,
                         reason=body.reason, user=user, extra_values=extra)


async def _member(members: list[Any], member_id: str) -> Any:
    found = next((m for m in members if str(m["id"]) == member_id and m["removed_at"] is None),
                 None) if is_uuid(member_id) else None
    if found is None:
        raise Problem(404, f"no member {member_id} in this household")
    return found


async def edit(*, session: AsyncSession, outbox: Outbox, household_id: str, member_id: str,
               body: schemas.MemberUpdate, if_match: str | None, user: Principal,
               today: date | None = None) -> schemas.HouseholdRead:
    """Change a member's fields; publish `household.member_updated` with the diff."""
    row, members = await load(session, household_id=household_id, user=user, for_update=True)
    check_version(row, if_match=if_match, required=True)
    check_active(row)
    member = await _member(members, member_id)
    given = body.model_fields_set - {"reason", "previous_head_relation"}
    values = {k: getattr(body, k) for k in given}
    old_head = None
    if values.get("relation") == domain.HEAD and member["relation"] != domain.HEAD:
        if body.previous_head_relation in (None, domain.HEAD):
            raise invalid([domain.Violation(
                "previous_head_relation", "required (not 'head') when making another member "
                                          "the head")])
        old_head = next(m for m in _current(members) if m["relation"] == domain.HEAD)
    for required in ("full_name", "national_id", "date_of_birth", "sex", "relation"):
        if required in values and values[required] is None:
            raise invalid([domain.Violation(required, "may not be null")])
    bad = domain.birth_violations(values.get("date_of_birth"), today=today or date.today(),
                                  field="date_of_birth")
    if "relation" in values:
        relation_after = {str(member["id"]): values["relation"]}
        if old_head is not None:
            relation_after[str(old_head["id"])] = str(body.previous_head_relation)
        bad += domain.head_after([{"relation": relation_after.get(str(m["id"]), m["relation"])}
                                  for m in _current(members)])
    violations_or_none(bad)
    if values.get("national_id") and values["national_id"] != member["national_id"]:
        await national_id_conflicts(session, national_ids=[values["national_id"]], user=user,
                                    fields=["national_id"], exclude_member=member_id)
    if "full_name" in values:
        values["name_key"] = domain.normalise_name(values["full_name"])
    changed = {k: v for k, v in values.items() if member[k] != v}
    if not changed:
        return household_read(row, members)
    async with unique_or_409("national_id"):
        await session.execute(sa.update(M).where(M.c.id == member_id).values(**changed))
    if old_head is not None:
        await session.execute(sa.update(M).where(M.c.id == old_head["id"])
                              .values(relation=body.previous_head_relation))
    return await _commit(session, outbox, row=row, before_members=members, member_id=member_id,
                         type=events.MEMBER_UPDATED, reason=body.reason, user=user)


async def remove(*, session: AsyncSession, outbox: Outbox, household_id: str, member_id: str,
                 reason: str, if_match: str | None, user: Principal) -> schemas.HouseholdRead:
    """Remove a member (not the head); the national ID is released. Publishes `member_removed`."""
    row, members = await load(session, household_id=household_id, user=user, for_update=True)
    check_version(row, if_match=if_match, required=True)
    check_active(row)
    member = await _member(members, member_id)
    if member["relation"] == domain.HEAD:
        raise invalid([domain.Violation("member_id", "the head cannot be removed; make another "
                                                     "member the head first, or archive")])
    await session.execute(sa.update(M).where(M.c.id == member_id).values(
        active=False, removed_at=sa.func.now(), removed_reason=reason))
    household_id = str(row["id"])
    members_after = await member_rows(session, household_id)
    current = _current(members_after)
    version = row["version"] + 1
    new = await updated_row(session, household_id, {
        "version": version, "search_text": search_text(current)})
    before, snap = snapshot(row, members), snapshot(new, members_after)
    changes = domain.diff(before, snap)
    env = await record(
        session, outbox, household_id=household_id, version=version, type=events.MEMBER_REMOVED,
        data={"household_id": household_id, "version": version,
              "member": member_snapshot(member), "changes": [], "reason": reason,
              "household": snap, "actor": actor_of(user)},
        changes=changes, actor=actor_of(user), reason=reason)
    return household_read(new, members_after, event_id=env.id)
