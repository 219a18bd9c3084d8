"""Complaints: public filings, officer and inspection-board entries, lifecycle, due dates, and
what an upheld complaint sets off (verification of the household, or a payment hold)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
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
from services.supervision.schemas import (
    ComplaintAssign,
    ComplaintClose,
    ComplaintCreate,
    ComplaintReject,
    ComplaintResolve,
)
from shared.auth import Principal, actor_of, scope_clause
from shared.envelope import Envelope
from shared.problems import Problem, not_found

C, H, CONTACT = tables.complaint, tables.complaint_history, tables.complaint_contact
P, ITEM = tables.posting, tables.posting_item
HANDLERS = ("national_admin", "province_officer", "commune_officer", "commune_chair")


class FormErrors(Exception):
    """The public form has errors; nothing was stored."""

    def __init__(self, errors: list[tuple[str, str]], values: dict[str, Any]) -> None:
        super().__init__(", ".join(f for f, _ in errors))
        self.errors = errors
        self.values = values


def client_key(svc: Service, address: str) -> str:
    """A keyed one-way hash standing for a client (its address is never stored)."""
    return hmac.new(svc.settings.rate_limit_key.encode(), address.encode(),
                    hashlib.sha256).hexdigest()[:32]


async def _insert(session: AsyncSession, svc: Service, *, commune_code: str,
                  province_code: str | None, posting_id: str | None, household_id: str | None,
                  not_on_list: bool, category: str, channel: str, text: str,
                  contact: str | None, actor: str | None) -> dict[str, Any]:
    complaint_id = f"KN-{uuid.uuid4().hex[:12].upper()}"
    received = now()
    due = domain.due_date(received, days=svc.settings.complaint_due_days)
    status = domain.initial_status(channel)
    await session.execute(sa.insert(C).values(
        id=complaint_id, commune_code=commune_code, province_code=province_code,
        posting_id=posting_id, household_id=household_id, not_on_list=not_on_list,
        category=category, channel=channel, text=text, status=status, received_at=received,
        due_at=due, created_by=actor))
    if contact:
        await session.execute(sa.insert(CONTACT).values(complaint_id=complaint_id,
                                                        contact=contact))
    await session.execute(sa.insert(H).values(complaint_id=complaint_id, status=status,
                                              actor=actor, note=f"filed through {channel}"))
    await svc.emit(session, type=events.COMPLAINT_RECEIVED, subject=household_id, data={
        "complaint_id": complaint_id, "commune_code": commune_code, "posting_id": posting_id,
        "household_id": household_id, "category": category, "channel": channel, "due_at": due,
        "status": status})  # never the contact, never the text (it may name the filer)
    return {"complaint_id": complaint_id, "status": status, "due_at": due.isoformat(),
            "received_at": received.isoformat()}


async def file_public(session: AsyncSession, svc: Service, *, posting_id: str,
                      form: dict[str, str], client: str) -> dict[str, Any]:
    """A resident's complaint from the posting page: 404 unknown posting, 409 closed posting,
    FormErrors for bad fields, 429 past the per-client limit; otherwise stored and announced."""
    posting = (await session.execute(sa.select(P).where(P.c.id == posting_id))).first()
    if posting is None:
        raise not_found("posting", posting_id)
    if not domain.is_open(status=posting.status, closes_at=posting.closes_at, now=now()):
        raise conflict(f"posting {posting_id} is closed to complaints since "
                       f"{(posting.closed_at or posting.closes_at).isoformat()}", code="closed")
    refs: dict[str, str] = dict((await session.execute(sa.select(ITEM.c.reference, ITEM.c.household_id)
                                       .where(ITEM.c.posting_id == posting_id))).tuples().all())
    values, errors = domain.check_public_form(form, references=set(refs),
                                              text_max=svc.settings.complaint_text_max)
    if errors:
        raise FormErrors(errors, values)
    key = client_key(svc, client)
    window = svc.settings.complaint_rate_window_s
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(key))))
    F = tables.public_filing
    recent = await session.scalar(sa.select(sa.func.count()).select_from(F).where(
        F.c.client_key == key, F.c.at > now() - timedelta(seconds=window)))
    if (recent or 0) >= svc.settings.complaint_rate_limit:
        raise Problem(429, "too many complaints from this connection; please try again later",
                      headers={"Retry-After": str(int(window))})
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(
        sa.func.hashtext("public-filings:" + posting_id))))
    posted = await session.scalar(sa.select(sa.func.count()).select_from(C).where(
        C.c.posting_id == posting_id, C.c.channel == "web",
        C.c.received_at > now() - timedelta(seconds=window)))
    if (posted or 0) >= svc.settings.complaint_posting_rate_limit:
        raise Problem(429, "too many complaints on this posting just now; please try again later",
                      headers={"Retry-After": str(int(window))})
    await session.execute(sa.insert(F).values(client_key=key))
    household = values["household"]
    return await _insert(
        session, svc, commune_code=posting.commune_code, province_code=posting.province_code,
        posting_id=posting_id, household_id=refs.get(household or ""),
        not_on_list=household == domain.NOT_ON_LIST, category=str(values["category"]),
        channel="web", text=str(values["text"]), contact=values["contact"], actor=None)


async def create(session: AsyncSession, svc: Service, *, user: Principal,
                 body: ComplaintCreate) -> dict[str, Any]:
    """A complaint an officer took in (hotline, in person) or the inspection board raised."""
    province = await require_commune(session, user, body.commune_code)
    if len(body.text) > svc.settings.complaint_text_max:
        raise invalid("text", f"at most {svc.settings.complaint_text_max} characters",
                      code="too_long")
    await _require_household(session, body.household_id, body.commune_code)
    if body.posting_id is not None:
        posting = (await session.execute(sa.select(P).where(P.c.id == body.posting_id))).first()
        if posting is None or posting.commune_code != body.commune_code:
            raise invalid("posting_id", f"no posting {body.posting_id} in commune "
                          f"{body.commune_code}", code="unknown_posting")
    return await _insert(
        session, svc, commune_code=body.commune_code, province_code=province,
        posting_id=body.posting_id, household_id=body.household_id, not_on_list=False,
        category=body.category, channel=body.channel, text=body.text, contact=body.contact,
        actor=actor_of(user))


async def _require_household(session: AsyncSession, household_id: str | None,
                             commune_code: str) -> None:
    """A complaint names only a household of its own commune (as registry and eligibility told
    supervision): an officer cannot hold or flag a household elsewhere through it."""
    if household_id is None:
        return
    A = tables.household_area
    found = await session.scalar(sa.select(A.c.commune_code).where(A.c.household_id == household_id))
    if found != commune_code:
        raise invalid("household_id", f"no household {household_id} known in commune "
                      f"{commune_code}", code="unknown_household")


async def _load(session: AsyncSession, user: Principal, complaint_id: str) -> Any:
    row = (await session.execute(sa.select(C).where(C.c.id == complaint_id)
                                 .with_for_update())).first()
    if row is None or not user.covers_row(row):
        raise not_found("complaint", complaint_id)
    return row


def _step(row: Any, action: str) -> str:
    try:
        return domain.next_status(row.status, action)
    except domain.ComplaintError as exc:
        raise conflict(str(exc), current_status=row.status) from None


async def _history(session: AsyncSession, complaint_id: str, status: str, actor: str | None,
                   note: str | None) -> None:
    await session.execute(sa.insert(H).values(complaint_id=complaint_id, status=status,
                                              actor=actor, note=note))


async def assign(session: AsyncSession, svc: Service, *, user: Principal, complaint_id: str,
                 body: ComplaintAssign) -> None:
    """Give the complaint to someone to investigate (received → open → in_progress)."""
    row = await _load(session, user, complaint_id)
    target = _step(row, "assign")
    actor = actor_of(user)
    if row.status == "received":
        await _history(session, row.id, "open", actor, "accepted for handling")
    await _history(session, row.id, target, actor, f"assigned to {body.assignee}")
    await session.execute(sa.update(C).where(C.c.id == row.id).values(
        status=target, assignee=body.assignee))


async def resolve(session: AsyncSession, svc: Service, *, user: Principal, complaint_id: str,
                  body: ComplaintResolve) -> None:
    """Answer the complaint; an upheld one about a household acts on it."""
    row = await _load(session, user, complaint_id)
    target = _step(row, "resolve")
    household_id = body.household_id or row.household_id
    if body.household_id is not None and body.household_id != row.household_id:
        await _require_household(session, body.household_id, row.commune_code)
    actor, at = actor_of(user), now()
    action = (domain.action_on_upheld(row.category, household_id)
              if body.outcome == "upheld" else None)
    await session.execute(sa.update(C).where(C.c.id == row.id).values(
        status=target, outcome=body.outcome, resolution_note=body.note, resolved_at=at,
        household_id=household_id, action=action, hold_active=action == "hold"))
    await _history(session, row.id, target, actor, f"{body.outcome}: {body.note}")
    resolved = await svc.emit(session, type=events.COMPLAINT_RESOLVED, subject=household_id,
                              data={"complaint_id": row.id, "commune_code": row.commune_code,
                                    "household_id": household_id, "category": row.category,
                                    "outcome": body.outcome, "note": body.note, "actor": actor,
                                    "posting_id": row.posting_id, "status": target,
                                    "overdue": at > row.due_at})
    await _act(session, svc, row=row, household_id=household_id, action=action, note=body.note,
               actor=actor, cause=resolved)


async def _act(session: AsyncSession, svc: Service, *, row: Any, household_id: str | None,
               action: str | None, note: str, actor: str | None, cause: Envelope) -> None:
    if household_id is None or action is None:
        return
    reason = f"complaint {row.id} ({row.category}) upheld: {note}"
    if action == "verification":
        await svc.emit(session, type=events.VERIFICATION_REQUESTED, subject=household_id,
                       causation=cause, data={"complaint_id": row.id,
                                              "household_id": household_id,
                                              "commune_code": row.commune_code, "reason": reason,
                                              "category": row.category, "actor": actor})
    elif action == "hold":
        await svc.emit(session, type=events.HOLD_REQUESTED, subject=household_id,
                       causation=cause, data={"complaint_id": row.id,
                                              "household_id": household_id, "reason": reason,
                                              "actor": actor, "commune_code": row.commune_code})


async def reject(session: AsyncSession, svc: Service, *, user: Principal, complaint_id: str,
                 body: ComplaintReject) -> None:
    """Refuse a complaint that cannot be taken up (a duplicate, out of scope, abusive)."""
    row = await _load(session, user, complaint_id)
    target = _step(row, "reject")
    actor, at = actor_of(user), now()
    await session.execute(sa.update(C).where(C.c.id == row.id).values(
        status=target, outcome="not_upheld", resolution_note=body.note, resolved_at=at))
    await _history(session, row.id, target, actor, f"rejected: {body.note}")
    await svc.emit(session, type=events.COMPLAINT_RESOLVED, subject=row.household_id, data={
        "complaint_id": row.id, "commune_code": row.commune_code,
        "household_id": row.household_id, "category": row.category, "outcome": "not_upheld",
        "note": body.note, "actor": actor, "posting_id": row.posting_id, "status": target,
        "overdue": at > row.due_at})


async def close(session: AsyncSession, svc: Service, *, user: Principal, complaint_id: str,
                body: ComplaintClose) -> None:
    """Close an answered complaint; a payment hold it set off is released."""
    row = await _load(session, user, complaint_id)
    target = _step(row, "close")
    actor = actor_of(user)
    await session.execute(sa.update(C).where(C.c.id == row.id).values(
        status=target, closed_at=now(), hold_active=False))
    await _history(session, row.id, target, actor, body.note)
    if row.hold_active and row.household_id:
        await svc.emit(session, type=events.HOLD_RELEASED, subject=row.household_id, data={
            "complaint_id": row.id, "household_id": row.household_id, "actor": actor,
            "commune_code": row.commune_code,
            "reason": body.note or "complaint closed"})


def _overdue_clause(at: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(sa.and_(C.c.status.in_(domain.ACTIVE), C.c.due_at < at),
                  sa.and_(C.c.resolved_at.is_not(None), C.c.resolved_at > C.c.due_at))


def view(row: Any, *, at: datetime) -> dict[str, Any]:
    """A complaint as the API shows it (never the contact)."""
    d = jsonable(row)
    d["complaint_id"] = d.pop("id")
    d["overdue"] = domain.is_overdue(status=row.status, due_at=row.due_at, now=at,
                                     resolved_at=row.resolved_at)
    return d


async def listing(session: AsyncSession, *, user: Principal, commune_code: str | None = None,
                  status: str | None = None, overdue: bool | None = None,
                  posting_id: str | None = None, household_id: str | None = None,
                  limit: int = 200) -> list[dict[str, Any]]:
    """Complaints in the caller's scope, newest first."""
    at = now()
    q = (sa.select(C, CONTACT.c.complaint_id.is_not(None).label("has_contact"))
         .join(CONTACT, CONTACT.c.complaint_id == C.c.id, isouter=True)
         .order_by(C.c.received_at.desc()).limit(min(limit, 1000)))
    q = q.where(scope_clause(user, C))
    for column, value in ((C.c.commune_code, commune_code), (C.c.status, status),
                          (C.c.posting_id, posting_id), (C.c.household_id, household_id)):
        if value is not None:
            q = q.where(column == value)
    if overdue is not None:
        q = q.where(_overdue_clause(at) if overdue else sa.not_(_overdue_clause(at)))
    return [view(r, at=at) for r in (await session.execute(q)).all()]


async def read(session: AsyncSession, *, user: Principal, complaint_id: str) -> dict[str, Any]:
    """One complaint with its history; the filer's contact only for those who handle it."""
    row = (await session.execute(sa.select(C).where(C.c.id == complaint_id))).first()
    if row is None or not user.covers_row(row):
        raise not_found("complaint", complaint_id)
    out = view(row, at=now())
    out["history"] = [jsonable(h, drop=("id", "complaint_id")) for h in (await session.execute(
        sa.select(H).where(H.c.complaint_id == complaint_id).order_by(H.c.id))).all()]
    contact = await session.scalar(sa.select(CONTACT.c.contact)
                                   .where(CONTACT.c.complaint_id == complaint_id))
    out["has_contact"] = contact is not None
    if user.role in HANDLERS:
        out["contact"] = contact
    return out
