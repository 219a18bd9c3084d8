"""Savings-and-loan groups (3–60 member households of one village) and commune budgets."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.disbursement import domain, tables
from services.disbursement.handlers.common import Service, invalid, jsonable, province_of
from services.disbursement.handlers.instructions import ensure_budget
from services.disbursement.schemas import BudgetSet, GroupCreate
from shared.auth import Principal, actor_of, scope_clause
from shared.problems import not_found

G = tables.savings_group
M = tables.group_member


def _same_village(a: str | None, b: str | None) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


async def create_group(session: AsyncSession, *, user: Principal, body: GroupCreate) -> Any:
    """A new group, empty until members join."""
    province = await province_of(session, body.commune_code)
    if not user.covers(commune_code=body.commune_code, province_code=province):
        raise invalid("commune_code", "out_of_scope", "outside your scope")
    return (await session.execute(sa.insert(G).values(
        id=str(uuid.uuid4()), commune_code=body.commune_code, province_code=province,
        village=body.village, organisation=body.organisation, name=body.name,
        leader_name=body.leader_name, created_by=actor_of(user)).returning(*G.c))).one()


async def add_member(session: AsyncSession, *, user: Principal, group_id: str,
                     household_id: str) -> Any:
    """Add a household of the group's village (known from eligibility's events)."""
    group = (await session.execute(sa.select(G).where(G.c.id == group_id).with_for_update())
             ).first()
    if group is None or not user.covers_row(group):
        raise not_found("group", group_id)
    household = (await session.execute(sa.select(tables.household).where(
        tables.household.c.household_id == household_id))).first()
    if household is None:
        raise invalid("household_id", "unknown_household",
                      "no eligibility decision has been received for this household yet")
    if household.commune_code != group.commune_code or not _same_village(household.village,
                                                                          group.village):
        raise invalid("household_id", "other_village",
                      f"the household lives in {household.village} ({household.commune_code}); "
                      f"the group is in {group.village} ({group.commune_code})")
    current = await session.scalar(sa.select(M.c.group_id).where(M.c.household_id == household_id))
    if current == group_id:
        return await read_group(session, user=user, group_id=group_id)
    if current is not None:
        raise invalid("household_id", "already_in_a_group",
                      f"the household is a member of group {current}", group_id=current)
    if group.member_count >= domain.GROUP_MAX_MEMBERS:
        raise invalid("group_id", "group_full",
                      f"a group has at most {domain.GROUP_MAX_MEMBERS} members")
    await session.execute(pg_insert(M).values(group_id=group_id, household_id=household_id,
                                              added_by=actor_of(user)))
    await session.execute(sa.update(G).where(G.c.id == group_id)
                          .values(member_count=G.c.member_count + 1))
    return await read_group(session, user=user, group_id=group_id)


async def read_group(session: AsyncSession, *, user: Principal, group_id: str) -> dict[str, Any]:
    """A group with its members and whether it takes applications."""
    group = (await session.execute(sa.select(G).where(G.c.id == group_id))).first()
    if group is None or not user.covers_row(group):
        raise not_found("group", group_id)
    h = tables.household
    members = (await session.execute(
        sa.select(M.c.household_id, M.c.joined_at, h.c.head_name)
        .join(h, h.c.household_id == M.c.household_id, isouter=True)
        .where(M.c.group_id == group_id).order_by(M.c.joined_at))).mappings().all()
    out = jsonable(group._mapping)
    out["group_id"] = out.pop("id")
    out["takes_applications"] = group.member_count >= domain.GROUP_MIN_MEMBERS
    out["members"] = [jsonable(m) for m in members]
    return out


async def list_groups(session: AsyncSession, *, user: Principal, commune_code: str | None,
                      village: str | None) -> list[dict[str, Any]]:
    """Groups in the caller's scope."""
    q = sa.select(G)
    q = q.where(scope_clause(user, G))
    if commune_code:
        q = q.where(G.c.commune_code == commune_code)
    if village:
        q = q.where(G.c.village == village)
    rows = (await session.execute(q.order_by(G.c.created_at).limit(1000))).all()
    out = []
    for g in rows:
        item = jsonable(g._mapping)
        item["group_id"] = item.pop("id")
        item["takes_applications"] = g.member_count >= domain.GROUP_MIN_MEMBERS
        out.append(item)
    return out


async def set_budget(session: AsyncSession, svc: Service, *, user: Principal, programme_code: str,
                     commune_code: str, body: BudgetSet) -> dict[str, Any]:
    """Set a commune's budget for a programme (never below what is already committed)."""
    programme = svc.programme(programme_code)
    province = await province_of(session, commune_code)
    # A commune disbursement has not heard of (from eligibility) is unknown, whatever province the
    # body claims: the scope is never taken from the caller's own input.
    known = province is not None or await session.scalar(sa.select(sa.exists().where(
        tables.household.c.commune_code == commune_code)))
    if not known or not user.covers(commune_code=commune_code, province_code=province):
        raise not_found("commune", commune_code)
    if province and body.province_code and province != body.province_code:
        raise invalid("province_code", "wrong_province",
                      f"commune {commune_code} is in province {province}")
    b = tables.budget
    row = (await session.execute(
        pg_insert(b).values(programme_code=programme.code, commune_code=commune_code,
                            total_vnd=body.total_vnd, source="set", updated_by=actor_of(user))
        .on_conflict_do_update(index_elements=[b.c.programme_code, b.c.commune_code],
                               set_={"total_vnd": body.total_vnd, "source": "set",
                                     "updated_by": actor_of(user), "updated_at": sa.func.now()},
                               where=b.c.committed_vnd <= body.total_vnd)
        .returning(*b.c))).first()
    if row is None:
        committed = await session.scalar(sa.select(b.c.committed_vnd).where(
            b.c.programme_code == programme.code, b.c.commune_code == commune_code))
        raise invalid("total_vnd", "below_committed",
                      f"{committed:,} VND is already committed; the budget cannot be lower")
    return budget_view(row)


def budget_view(row: Any) -> dict[str, Any]:
    """A budget with what is left."""
    out = jsonable(row._mapping)
    out["remaining_vnd"] = row.total_vnd - row.committed_vnd
    return out


async def list_budgets(session: AsyncSession, svc: Service, *, user: Principal,
                       commune_code: str | None, programme_code: str | None) -> list[dict[str, Any]]:
    """Budgets in scope; a commune asked for by code shows every programme (defaults included)."""
    b = tables.budget
    if commune_code:
        if not user.covers(commune_code=commune_code,
                           province_code=await province_of(session, commune_code)):
            raise not_found("commune", commune_code)
        for p in svc.programmes.values():
            await ensure_budget(session, programme=p, commune_code=commune_code)
    q = sa.select(b)
    if commune_code:
        q = q.where(b.c.commune_code == commune_code)
    elif (codes := user.communes_filter()) is not None:
        q = q.where(b.c.commune_code.in_(codes))
    if programme_code:
        q = q.where(b.c.programme_code == programme_code)
    rows = (await session.execute(q.order_by(b.c.commune_code, b.c.programme_code).limit(5000))
            ).all()
    return [budget_view(r) for r in rows]


async def household_view(session: AsyncSession, *, user: Principal,
                         household_id: str) -> dict[str, Any]:
    """The projected household, its complaint holds, its group and the shocks that hit it."""
    h = tables.household
    row = (await session.execute(sa.select(h).where(h.c.household_id == household_id))).first()
    if row is None or not user.covers(commune_code=row.commune_code,
                                      province_code=await province_of(session, row.commune_code)):
        raise not_found("household", household_id)
    holds = (await session.execute(
        sa.select(tables.hold.c.complaint_id, tables.hold.c.reason, tables.hold.c.requested_at,
                  tables.hold.c.released_at)
        .where(tables.hold.c.household_id == household_id)
        .order_by(tables.hold.c.requested_at))).mappings().all()
    out = jsonable(row._mapping)
    out["holds"] = [jsonable(x) for x in holds]
    out["on_hold"] = any(x["released_at"] is None for x in holds)
    out["group_id"] = await session.scalar(sa.select(M.c.group_id)
                                           .where(M.c.household_id == household_id))
    x = tables.shock_exposure
    out["shocks"] = [jsonable(s) for s in (await session.execute(
        sa.select(x.c.shock_id, x.c.shock_type, x.c.shock_title, x.c.occurred_on)
        .where(x.c.household_id == household_id).order_by(x.c.occurred_on))).mappings()]
    return out
