"""Administrative units: load a CSV (shipped demo set or the official list), list them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, schemas, tables
from shared.problems import Problem

A = tables.admin_unit
DEMO_FILE = Path(__file__).resolve().parent.parent / "data" / "admin_units.csv"


async def load_csv(session: AsyncSession, lines: Iterable[str]) -> schemas.AdminUnitsLoaded:
    """Upsert every unit of the file (all or nothing: 422 listing each bad line)."""
    units, errors = domain.parse_csv(lines)
    known = set((await session.scalars(sa.select(A.c.code).where(A.c.level == "province"))).all())
    errors += [(0, v) for v in domain.admin_units.unknown_parents(units, known)]
    if errors:
        raise Problem(422, f"{len(errors)} problem(s) in the admin-units file; nothing loaded",
                      errors=[{"line": line, "field": v.field, "message": v.message}
                              for line, v in errors])
    if not units:
        raise Problem(422, "the admin-units file holds no unit",
                      errors=[{"field": "body", "message": "no rows"}])
    existing = set((await session.scalars(
        sa.select(A.c.code).where(A.c.code.in_([u.code for u in units])))).all())
    ordered = sorted(units, key=lambda u: u.level != "province")
    for start in range(0, len(ordered), 1000):
        chunk = ordered[start:start + 1000]
        stmt = pg_insert(A).values([
            {"code": u.code, "level": u.level, "name": u.name, "parent_code": u.parent_code,
             "area_type": u.area_type} for u in chunk])
        await session.execute(stmt.on_conflict_do_update(
            index_elements=[A.c.code],
            set_={"level": stmt.excluded.level, "name": stmt.excluded.name,
                  "parent_code": stmt.excluded.parent_code,
                  "area_type": stmt.excluded.area_type, "updated_at": sa.func.now()}))
    inserted = sum(1 for u in units if u.code not in existing)
    return schemas.AdminUnitsLoaded(
        provinces=sum(1 for u in units if u.level == "province"),
        communes=sum(1 for u in units if u.level == "commune"),
        inserted=inserted, updated=len(units) - inserted)


async def seed_if_empty(session: AsyncSession, path: Path = DEMO_FILE) -> bool:
    """Load the shipped demo set when the table is empty (first start); True if loaded."""
    if await session.scalar(sa.select(sa.func.count()).select_from(A)):
        return False
    with path.open(encoding="utf-8", newline="") as fh:
        await load_csv(session, fh)
    return True


async def list_units(session: AsyncSession, *, level: str | None = None,
                     parent: str | None = None) -> list[schemas.AdminUnitRead]:
    """Units by level and/or parent, ordered by code."""
    q = sa.select(A).order_by(A.c.code)
    if level:
        q = q.where(A.c.level == level)
    if parent:
        q = q.where(A.c.parent_code == parent)
    rows = (await session.execute(q)).mappings().all()
    return [schemas.AdminUnitRead(code=r["code"], level=r["level"], name=r["name"],
                                  parent_code=r["parent_code"], area_type=r["area_type"])
            for r in rows]
