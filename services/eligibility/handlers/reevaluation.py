"""Rule-set change: re-decide every household a rule set affects, in batches, with progress.

Each batch (households locked, decisions, events, job progress and cursor) is one transaction,
so a crash resumes after the last committed batch, and a re-run changes nothing."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.eligibility import domain, tables
from services.eligibility.handlers import rulesets
from services.eligibility.handlers.common import Service, invalid, jsonable
from services.eligibility.handlers.deciding import Trigger, refresh
from shared.auth import Principal, actor_of
from shared.problems import Problem, not_found

log = logging.getLogger("everydoor.eligibility.reevaluation")

H = tables.household
J = tables.reevaluation_job


def affected(rs: domain.RuleSet) -> sa.ColumnElement[bool]:
    """Households whose current survey falls under the rule set, or that it decided last."""
    in_force: sa.ColumnElement[bool] = H.c.survey_date.between(rs.effective_from,
                                                               rs.effective_to)
    if rs.is_local:
        in_force = sa.and_(in_force, H.c.province_code.in_(rs.province_codes))
    return sa.and_(H.c.status == "active", H.c.survey.is_not(None),
                   sa.or_(in_force, H.c.current_ruleset_id == rs.id))


def job_view(row: Any) -> dict[str, Any]:
    """A job with its progress."""
    r = dict(row)
    total, processed = r["total"], r["processed"]
    r["job_id"] = r.pop("id")
    r["progress"] = 1.0 if r["status"] == "done" else (
        round(min(processed / total, 1.0), 4) if total else 0.0)
    r.pop("cursor", None)
    return jsonable(r)


async def start(session: AsyncSession, svc: Service, *, user: Principal,
                ruleset_id: str) -> dict[str, Any]:
    """Reload the rule-set files and make them the active rule sets of every replica (all valid,
    or 422 and nothing changes), and open a job."""
    try:
        files, book = rulesets.from_files(svc)
    except domain.RuleSetError as exc:
        raise invalid("rulesets", str(exc)) from None
    try:
        rs = book.get(ruleset_id)
    except KeyError:
        raise not_found("rule set", ruleset_id) from None
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(rulesets.RELOAD_LOCK)))
    running = await session.scalar(sa.select(J.c.id).where(J.c.ruleset_id == ruleset_id,
                                                           J.c.status == "running"))
    if running is not None:
        raise Problem(409, f"a re-evaluation of {ruleset_id} is already running: {running}",
                      job_id=running)
    await rulesets.activate(session, svc, book=book, files=files, actor=actor_of(user))
    total = await session.scalar(sa.select(sa.func.count()).select_from(H).where(affected(rs)))
    row = (await session.execute(sa.insert(J).values(
        id=str(uuid.uuid4()), ruleset_id=rs.id, status="running", total=total or 0,
        ruleset_digest=rs.digest, requested_by=actor_of(user), started_at=sa.func.now(),
    ).returning(*J.c))).mappings().one()
    return job_view(row)


async def read(session: AsyncSession, job_id: str) -> dict[str, Any]:
    """A job's status and progress (404 when unknown)."""
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise not_found("re-evaluation", job_id) from None
    row = (await session.execute(sa.select(J).where(J.c.id == job_id))).mappings().first()
    if row is None:
        raise not_found("re-evaluation", job_id)
    return job_view(row)


async def run(sessions: async_sessionmaker[AsyncSession], svc: Service, job_id: str) -> None:
    """Work a job to its end, batch by batch (retrying transient database errors)."""
    while True:
        try:
            async with sessions() as session, session.begin():
                more = await _batch(session, svc, job_id)
        except asyncio.CancelledError:
            raise
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in ("40P01", "40001") or \
                    exc.connection_invalidated:
                log.info("re-evaluation %s: transient %s; retrying the batch", job_id, exc.orig)
                await asyncio.sleep(0.2)
                continue
            await _fail(sessions, job_id, exc)
            return
        except Exception as exc:
            await _fail(sessions, job_id, exc)
            return
        if not more:
            return


async def _batch(session: AsyncSession, svc: Service, job_id: str) -> bool:
    job = (await session.execute(sa.select(J).where(J.c.id == job_id).with_for_update()
                                 )).mappings().first()
    if job is None or job["status"] != "running":
        return False
    try:
        rs = (await rulesets.sync(session, svc)).get(job["ruleset_id"])
    except KeyError:
        raise RuntimeError(f"rule set {job['ruleset_id']} is no longer loaded") from None
    q = sa.select(H).where(affected(rs))
    if job["cursor"] is not None:
        q = q.where(H.c.id > job["cursor"])
    rows = (await session.execute(q.order_by(H.c.id).limit(svc.settings.reevaluation_batch_size)
                                  .with_for_update())).mappings().all()
    if not rows:
        await session.execute(sa.update(J).where(J.c.id == job_id).values(
            status="done", finished_at=sa.func.now(), updated_at=sa.func.now()))
        log.info("re-evaluation %s of %s done: %d households, %d changed", job_id, rs.id,
                 job["processed"], job["changed"])
        return False
    changed = await refresh(session, svc, [dict(r) for r in rows], trigger=Trigger(job_id=job_id))
    await session.execute(sa.update(J).where(J.c.id == job_id).values(
        processed=J.c.processed + len(rows), changed=J.c.changed + changed,
        cursor=rows[-1]["id"], updated_at=sa.func.now()))
    return True


async def _fail(sessions: async_sessionmaker[AsyncSession], job_id: str, exc: BaseException) -> None:
    log.exception("re-evaluation %s failed", job_id, exc_info=exc)
    async with sessions() as session, session.begin():
        await session.execute(sa.update(J).where(J.c.id == job_id).values(
            status="failed", error=f"{type(exc).__name__}: {exc}"[:4000],
            finished_at=sa.func.now(), updated_at=sa.func.now()))


async def unfinished(session: AsyncSession) -> list[str]:
    """Jobs a previous process left running (resumed at start-up)."""
    return list((await session.scalars(sa.select(J.c.id).where(J.c.status == "running"))).all())


async def sweep_expired(session: AsyncSession, svc: Service, *, limit: int = 1000) -> int:
    """Re-publish programmes of households whose "just escaped" period ended since their list
    was last computed; returns how many were looked at."""
    today = svc.today()
    rows = (await session.execute(
        sa.select(H).where(H.c.just_escaped_until < today,
                           sa.cast(H.c.programs_as_of, sa.Date) <= H.c.just_escaped_until)
        .order_by(H.c.id).limit(limit).with_for_update(skip_locked=True))).mappings().all()
    if not rows:
        return 0
    await refresh(session, svc, [dict(r) for r in rows], trigger=Trigger())
    await session.execute(sa.update(H).where(H.c.id.in_([r["id"] for r in rows]),
                                             sa.cast(H.c.programs_as_of, sa.Date)
                                             <= H.c.just_escaped_until)
                          .values(programs_as_of=sa.func.now()))
    return len(rows)
