"""Public posting: snapshot the commune's provisional classifications, close, approve."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.supervision import domain, events, tables
from services.supervision.handlers.common import (
    Service,
    conflict,
    invalid,
    jsonable,
    now,
    require_commune,
)
from services.supervision.schemas import PostingApprove, PostingCreate
from shared.auth import Principal, actor_of, scope_clause
from shared.problems import Problem, not_found

P, ITEM, C = tables.posting, tables.posting_item, tables.complaint


async def create(session: AsyncSession, svc: Service, *, user: Principal,
                 body: PostingCreate) -> str:
    """Snapshot the commune's provisional classifications of the round into an open posting."""
    province = await require_commune(session, user, body.commune_code)
    opened, s = now(), svc.settings
    if body.closes_at is not None:
        if body.closes_at <= opened:
            raise invalid("closes_at", "must be in the future", code="in_the_past")
        earliest = domain.close_after_working_days(
            opened, days=s.posting_min_working_days, holidays=s.public_holidays,
            office_close=time(s.office_close_hour)) if s.posting_min_working_days else opened
        if body.closes_at < earliest:
            raise invalid("closes_at", f"the public window lasts at least "
                          f"{s.posting_min_working_days} working days: no earlier than "
                          f"{earliest.isoformat()}", code="window_too_short",
                          earliest=earliest.isoformat())
        closes_at = body.closes_at
    else:
        closes_at = domain.close_after_working_days(
            opened, days=s.posting_working_days, holidays=s.public_holidays,
            office_close=time(s.office_close_hour))
    # one open posting per commune and round (serialised per commune)
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(
        sa.func.hashtext("posting:" + body.commune_code))))
    existing = await session.scalar(sa.select(P.c.id).where(
        P.c.commune_code == body.commune_code, P.c.review_round == body.review_round,
        P.c.status == "open"))
    if existing:
        raise conflict(f"commune {body.commune_code} already has an open posting {existing} for "
                       f"round {body.review_round}", posting_id=existing)
    c = tables.classification
    rows = (await session.execute(sa.select(c).where(
        c.c.commune_code == body.commune_code, c.c.status == "provisional",
        c.c.category != "incomplete",
        sa.or_(c.c.review_round == body.review_round, c.c.review_round.is_(None)))
        .order_by(c.c.village, c.c.head_name))).all()
    if not rows:
        raise invalid("commune_code", f"no provisional classification of round "
                      f"{body.review_round} in commune {body.commune_code} to post",
                      code="nothing_to_post")
    posting_id = f"NY-{body.commune_code}-{uuid.uuid4().hex[:8]}"
    await session.execute(sa.insert(P).values(
        id=posting_id, commune_code=body.commune_code, province_code=province or
        rows[0].province_code, review_round=body.review_round, status="open", opens_at=opened,
        closes_at=closes_at, created_by=actor_of(user)))
    items = [_item(posting_id, r, key=svc.settings.reference_key) for r in rows]
    await session.execute(sa.insert(ITEM), items)
    listed = [{"household_id": i["household_id"], "classification_id": i["classification_id"],
               "category": i["category"]} for i in items]
    none: list[dict[str, Any]] = []
    parts = domain.postings.approval_parts(listed, none,
                                           size=svc.settings.posting_approval_part_size)
    for n, (part, _) in enumerate(parts, start=1):
        await svc.emit(session, type=events.POSTING_OPENED, subject=None, data={
            "posting_id": posting_id, "commune_code": body.commune_code,
            "review_round": body.review_round, "opens_at": opened, "closes_at": closes_at,
            "actor": actor_of(user), "items": part, "part": n, "parts": len(parts)})
    return posting_id


def _item(posting_id: str, r: Any, *, key: str) -> dict[str, Any]:
    x = r.explanation or {}
    return {"posting_id": posting_id, "household_id": r.household_id,
            "reference": domain.masked_reference(r.household_id, key=key),
            "classification_id": r.classification_id, "village": r.village,
            "head_name": r.head_name, "category": r.category,
            "previous_category": r.previous_category,
            "indicators": [{"code": i.get("code"), "name_vi": i.get("name_vi"),
                            "name_en": i.get("name_en")} for i in x.get("deprived") or []],
            "deprivation_count": int(x.get("deprivation_count") or len(x.get("deprived") or [])),
            "threshold": x.get("threshold")}


async def _load(session: AsyncSession, user: Principal | None, posting_id: str, *,
                lock: bool = False) -> Any:
    q = sa.select(P).where(P.c.id == posting_id)
    row = (await session.execute(q.with_for_update() if lock else q)).first()
    if row is None or (user is not None and not user.covers_row(row)):
        raise not_found("posting", posting_id)
    return row


async def _close(session: AsyncSession, svc: Service, row: Any, *, actor: str | None,
                 at: datetime, reason: str | None = None) -> None:
    await session.execute(sa.update(P).where(P.c.id == row.id).values(
        status="closed", closed_at=at, closed_by=actor, close_reason=reason))
    none: list[dict[str, Any]] = []
    parts = domain.postings.approval_parts(await _event_items(session, row.id), none,
                                           size=svc.settings.posting_approval_part_size)
    for n, (part, _) in enumerate(parts, start=1):
        await svc.emit(session, type=events.POSTING_CLOSED, subject=None, data={
            "posting_id": row.id, "commune_code": row.commune_code, "closed_at": at,
            "actor": actor, "items": part, "part": n, "parts": len(parts),
            **({"reason": reason} if reason else {})})


async def _event_items(session: AsyncSession, posting_id: str) -> list[dict[str, Any]]:
    rows = (await session.execute(sa.select(ITEM.c.household_id, ITEM.c.classification_id,
                                            ITEM.c.category).where(ITEM.c.posting_id == posting_id)
                                  .order_by(ITEM.c.household_id))).all()
    return [dict(r._mapping) for r in rows]


async def close(session: AsyncSession, svc: Service, *, user: Principal, posting_id: str,
                reason: str | None = None) -> None:
    """End the public window (complaints are refused from then on). Before `closes_at` only a
    national admin may, with a reason that is recorded and published."""
    row = await _load(session, user, posting_id, lock=True)
    if row.status != "open":
        raise conflict(f"posting {posting_id} is already {row.status}")
    at = now()
    if at < row.closes_at:
        if user.role != "national_admin":
            raise Problem(403, f"posting {posting_id} is open for complaints until "
                          f"{row.closes_at.isoformat()}; only a national admin may close it "
                          "earlier, with a reason", code="window_open",
                          closes_at=row.closes_at.isoformat())
        if not reason:
            raise invalid("reason", "closing before the window ends needs a recorded reason",
                          code="reason_required")
    await _close(session, svc, row, actor=actor_of(user), at=at,
                 reason=reason if at < row.closes_at else None)


async def close_due(session: AsyncSession, svc: Service, *, limit: int = 100) -> int:
    """Close postings whose window has ended (run periodically); return how many."""
    rows = (await session.execute(sa.select(P).where(P.c.status == "open", P.c.closes_at <= now())
                                  .limit(limit).with_for_update(skip_locked=True))).all()
    for row in rows:
        await _close(session, svc, row, actor="system:posting-window", at=row.closes_at)
    return len(rows)


async def approve(session: AsyncSession, svc: Service, *, user: Principal, posting_id: str,
                  body: PostingApprove) -> None:
    """The commune chair approves: every complaint resolved or explicitly carried over."""
    row = await _load(session, user, posting_id, lock=True)
    at = now()
    if row.status == "approved":
        raise conflict(f"posting {posting_id} is already approved")
    if row.status == "open":
        if at < row.closes_at:
            raise conflict(f"posting {posting_id} is open for complaints until "
                           f"{row.closes_at.isoformat()}; close it first",
                           closes_at=row.closes_at.isoformat())
        await _close(session, svc, row, actor="system:posting-window", at=row.closes_at)
    complaints = (await session.execute(sa.select(C).where(C.c.posting_id == posting_id)
                                        .with_for_update())).all()
    active = {c.id for c in complaints if c.status in domain.ACTIVE}
    for i, cid in enumerate(body.carry_over):
        if cid not in active:
            raise invalid(f"carry_over.{i}", f"{cid} is not an unresolved complaint on this "
                          "posting", code="not_carriable")
    blockers = domain.approval_blockers(
        [domain.postings.ComplaintState(c.id, c.status) for c in complaints],
        carried_over=body.carry_over)
    if blockers:
        raise conflict(f"{len(blockers)} complaint(s) on posting {posting_id} are neither "
                       "resolved nor carried over", unresolved_complaints=sorted(blockers))
    # Households whose data an upheld complaint sent back for verification wait for the next
    # review; so do households whose classification has been replaced since the snapshot.
    reverify = {c.household_id: c.id for c in complaints
                if c.action == "verification" and c.household_id}
    current: dict[str, str] = dict((await session.execute(
        sa.select(tables.classification.c.household_id,
                  tables.classification.c.classification_id)
        .where(tables.classification.c.household_id.in_(
            sa.select(ITEM.c.household_id).where(ITEM.c.posting_id == posting_id))))).tuples().all())
    approved, excluded = [], []
    for item in await _event_items(session, posting_id):
        h = item["household_id"]
        if h in reverify:
            excluded.append({**item, "reason": f"re-verification requested by complaint "
                                               f"{reverify[h]}"})
        elif current.get(h) != item["classification_id"]:
            excluded.append({**item, "reason": "classification superseded since the posting"})
        else:
            approved.append(item)
    if body.carry_over:
        await session.execute(sa.update(C).where(C.c.id.in_(body.carry_over))
                              .values(carried_over=True))
    summary = {"households": len(approved), "excluded": excluded,
               "carried_over_complaints": sorted(body.carry_over)}
    await session.execute(sa.update(P).where(P.c.id == posting_id).values(
        status="approved", approved_at=at, approved_by=actor_of(user), approved=summary))
    parts = domain.postings.approval_parts(approved, excluded,
                                           size=svc.settings.posting_approval_part_size)
    for n, (items, left_out) in enumerate(parts, start=1):
        await svc.emit(session, type=events.POSTING_APPROVED, subject=None, data={
            "posting_id": posting_id, "commune_code": row.commune_code,
            "review_round": row.review_round, "approved_at": at, "items": items,
            "carried_over_complaints": sorted(body.carry_over) if n == 1 else [],
            "excluded": left_out, "actor": actor_of(user), "part": n, "parts": len(parts)})


async def read(session: AsyncSession, *, user: Principal | None, posting_id: str,
               with_items: bool = True) -> dict[str, Any]:
    """A posting, its items (no personal identifiers) and its complaint counts."""
    row = await _load(session, user, posting_id)
    out = jsonable(row)
    out["posting_id"] = out.pop("id")
    out["accepting_complaints"] = domain.is_open(status=row.status, closes_at=row.closes_at,
                                                 now=now())
    if with_items:
        items = (await session.execute(sa.select(ITEM).where(ITEM.c.posting_id == posting_id)
                                       .order_by(ITEM.c.village, ITEM.c.head_name))).all()
        out["items"] = [jsonable(i, drop=("posting_id",)) for i in items]
    counts = (await session.execute(
        sa.select(C.c.status, sa.func.count()).where(C.c.posting_id == posting_id)
        .group_by(C.c.status))).all()
    out["complaints"] = {str(k): int(v) for k, v in counts}
    return out


async def listing(session: AsyncSession, *, user: Principal, commune_code: str | None,
                  status: str | None, limit: int = 100) -> list[dict[str, Any]]:
    """Postings in the caller's scope, newest first."""
    q = sa.select(P).order_by(P.c.created_at.desc()).limit(min(limit, 500))
    q = q.where(scope_clause(user, P))
    if commune_code:
        q = q.where(P.c.commune_code == commune_code)
    if status:
        q = q.where(P.c.status == status)
    out = []
    for row in (await session.execute(q)).all():
        d = jsonable(row)
        d["posting_id"] = d.pop("id")
        out.append(d)
    return out


async def public_view(session: AsyncSession, *, posting_id: str) -> dict[str, Any]:
    """What the public page shows: items grouped by village, and whether complaints are taken."""
    data = await read(session, user=None, posting_id=posting_id)
    data.pop("created_by", None)
    data.pop("closed_by", None)
    data.pop("approved_by", None)
    data.pop("approved", None)
    villages: dict[str, list[dict[str, Any]]] = {}
    for item in data.pop("items"):
        item.pop("household_id", None)
        item.pop("classification_id", None)
        villages.setdefault(item["village"], []).append(item)
    data["villages"] = villages
    return data
