"""Cadre use cases: record cadres of a commune, assign them to villages (history kept)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, schemas, tables
from services.registry.handlers.common import (
    actor_of,
    communes,
    invalid,
    is_uuid,
    sees_personal_data,
    violations_or_none,
)
from shared import auth
from shared.auth import Principal
from shared.problems import Problem, not_found

C, A = tables.cadre, tables.assignment


async def commune_in_scope(session: AsyncSession, *, commune_code: str, user: Principal,
                           field: str = "commune_code") -> str:
    """The commune's province; 422 naming `field` when the commune is unknown, 403 when it is
    outside the caller's scope."""
    known = await communes(session, [commune_code])
    if commune_code not in known:
        raise invalid([domain.Violation(field, f"unknown commune {commune_code}")])
    province_code = known[commune_code][0]
    if not user.covers(province_code=province_code, commune_code=commune_code):
        raise Problem(403, f"commune {commune_code} is outside your scope")
    return province_code


def covers(user: Principal, row: Any) -> bool:
    """Whether a row with province_code and commune_code is inside the caller's scope."""
    return user.covers(province_code=row["province_code"], commune_code=row["commune_code"])


def cadre_view(c: Any, user: Principal) -> schemas.CadreRead | schemas.CadreReadMasked:
    """A cadre as the caller may see it: the phone only for writers."""
    fields = {"cadre_id": str(c["id"]), "province_code": c["province_code"],
              "commune_code": c["commune_code"], "name": c["name"],
              "organisation": c["organisation"], "young_cadre": c["young_cadre"],
              "created_at": c["created_at"]}
    if sees_personal_data(user):
        return schemas.CadreRead(**fields, phone=c["phone"])
    return schemas.CadreReadMasked(**fields)


async def load_cadre(session: AsyncSession, *, cadre_id: str, user: Principal) -> Any:
    """The cadre row (404 when unknown or outside the caller's scope)."""
    row = None
    if is_uuid(cadre_id):
        row = (await session.execute(sa.select(C).where(C.c.id == cadre_id))).mappings().first()
    if row is None or not covers(user, row):
        raise not_found("cadre", cadre_id)
    return row


async def create(*, session: AsyncSession, body: schemas.CadreCreate,
                 user: Principal) -> schemas.CadreRead:
    """Record a cadre of a commune in the caller's scope."""
    province_code = await commune_in_scope(session, commune_code=body.commune_code, user=user)
    row = (await session.execute(sa.insert(C).values(
        id=str(uuid.uuid4()), province_code=province_code, commune_code=body.commune_code,
        name=body.name, organisation=body.organisation, young_cadre=body.young_cadre,
        phone=body.phone, created_by=actor_of(user)).returning(*C.c))).mappings().one()
    view = cadre_view(row, user)
    assert isinstance(view, schemas.CadreRead)  # only writers create
    return view


async def get(*, session: AsyncSession, cadre_id: str,
              user: Principal) -> schemas.CadreRead | schemas.CadreReadMasked:
    """One cadre in the caller's view."""
    return cadre_view(await load_cadre(session, cadre_id=cadre_id, user=user), user)


async def search(*, session: AsyncSession, user: Principal,
                 commune_code: str | None = None,
                 ) -> list[schemas.CadreRead | schemas.CadreReadMasked]:
    """Cadres in the caller's scope (of one commune), by name."""
    q = sa.select(C).where(auth.scope_clause(user, C)).order_by(C.c.name, C.c.seq)
    if commune_code:
        q = q.where(C.c.commune_code == commune_code)
    return [cadre_view(r, user) for r in (await session.execute(q)).mappings()]


def assignment_read(a: Any) -> schemas.AssignmentRead:
    """An assignment row as the API returns it."""
    return schemas.AssignmentRead(
        assignment_id=str(a["id"]), cadre_id=str(a["cadre_id"]),
        province_code=a["province_code"], commune_code=a["commune_code"],
        villages=list(a["villages"]), valid_from=a["valid_from"], valid_to=a["valid_to"],
        end_reason=a["end_reason"], created_by=a["created_by"], ended_by=a["ended_by"],
        created_at=a["created_at"], ended_at=a["ended_at"])


async def _overlaps(session: AsyncSession, *, cadre_id: str, villages: list[str],
                    period: domain.Period, exclude: str | None = None) -> None:
    """409 when the cadre already holds one of `villages` on a day of `period`."""
    q = sa.select(A.c.id, A.c.valid_from, A.c.valid_to, A.c.villages).where(
        A.c.cadre_id == cadre_id)
    if exclude:
        q = q.where(A.c.id != exclude)
    existing = [(str(r.id), domain.Period(r.valid_from, r.valid_to), r.villages)
                for r in (await session.execute(q))]
    clash = domain.overlapping_villages(villages=villages, period=period, existing=existing)
    if clash:
        raise Problem(409, "the cadre is already assigned to " + ", ".join(
            f"{v} (assignment {a})" for v, a in clash.items()) + " on some of these days",
            errors=[{"field": "villages", "message": f"{v}: already assigned by assignment {a}"}
                    for v, a in clash.items()])


async def assign(*, session: AsyncSession, body: schemas.AssignmentCreate,
                 user: Principal) -> schemas.AssignmentRead:
    """Assign a cadre to villages of its commune for a period (nothing stored on any refusal)."""
    period = domain.Period(body.valid_from, body.valid_to)
    violations_or_none([*domain.villages_violations(body.villages),
                        *domain.period_violations(period)])
    province_code = await commune_in_scope(session, commune_code=body.commune_code, user=user)
    cadre = None
    if is_uuid(body.cadre_id):
        cadre = (await session.execute(sa.select(C).where(C.c.id == body.cadre_id)
                                       .with_for_update())).mappings().first()
    if cadre is None or not covers(user, cadre):
        raise invalid([domain.Violation("cadre_id", f"no cadre {body.cadre_id}")])
    if cadre["commune_code"] != body.commune_code:
        raise invalid([domain.Violation(
            "cadre_id", f"the cadre belongs to commune {cadre['commune_code']}, not "
                        f"{body.commune_code}")])
    await _overlaps(session, cadre_id=body.cadre_id, villages=body.villages, period=period)
    row = (await session.execute(sa.insert(A).values(
        id=str(uuid.uuid4()), cadre_id=body.cadre_id, province_code=province_code,
        commune_code=body.commune_code, villages=list(body.villages),
        valid_from=body.valid_from, valid_to=body.valid_to, created_by=actor_of(user),
    ).returning(*A.c))).mappings().one()
    return assignment_read(row)


async def end(*, session: AsyncSession, assignment_id: str, body: schemas.AssignmentEnd,
              user: Principal) -> schemas.AssignmentRead:
    """End an assignment on a day (it stays in the history); only an open or later-ending one
    can be ended, not before it starts."""
    row = None
    if is_uuid(assignment_id):
        row = (await session.execute(sa.select(A).where(A.c.id == assignment_id)
                                     .with_for_update())).mappings().first()
    if row is None or not covers(user, row):
        raise not_found("assignment", assignment_id)
    if row["valid_to"] is not None and row["valid_to"] <= body.valid_to:
        raise Problem(409, f"assignment {assignment_id} already ends on "
                           f"{row['valid_to'].isoformat()}")
    violations_or_none(domain.period_violations(domain.Period(row["valid_from"], body.valid_to)))
    new = (await session.execute(sa.update(A).where(A.c.id == assignment_id).values(
        valid_to=body.valid_to, end_reason=body.reason, ended_by=actor_of(user),
        ended_at=sa.func.now()).returning(*A.c))).mappings().one()
    return assignment_read(new)


async def search_assignments(*, session: AsyncSession, user: Principal,
                             commune_code: str | None = None, cadre_id: str | None = None,
                             ) -> list[schemas.AssignmentRead]:
    """Assignments in the caller's scope, current and past, newest start first."""
    q = sa.select(A).where(auth.scope_clause(user, A)).order_by(A.c.valid_from.desc(),
                                                                A.c.created_at.desc())
    if commune_code:
        q = q.where(A.c.commune_code == commune_code)
    if cadre_id:
        if not is_uuid(cadre_id):
            return []
        q = q.where(A.c.cadre_id == cadre_id)
    return [assignment_read(r) for r in (await session.execute(q)).mappings()]
