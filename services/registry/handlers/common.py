"""What every registry use case needs: snapshots, scope, versions, history + outbox, lookups."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas, tables
from shared import auth, privacy, problems
from shared.auth import Principal
from shared.envelope import Envelope
from shared.outbox import Outbox
from shared.problems import Problem

H, M, S, V = tables.household, tables.member, tables.survey, tables.household_version
# Roles that register and change households and so see members' personal identifiers in full;
# every other reader gets the masked view (shared/privacy.py).
WRITERS = ("national_admin", "province_officer", "commune_officer")
MEMBER_FIELDS = ("full_name", "national_id", "date_of_birth", "sex", "relation", "ethnicity",
                 "disability")


def actor_of(user: Principal | None) -> str | None:
    """How the actor is recorded in history and events: the token's `sub`."""
    return None if user is None else user.sub


def invalid(violations: Sequence[domain.Violation]) -> Problem:
    """422 naming every bad field."""
    return Problem(422, "invalid fields: " + ", ".join(sorted({v.field for v in violations})),
                   errors=[{"field": v.field, "message": v.message} for v in violations])


def not_found(household_id: str) -> Problem:
    """404, also for households outside the caller's scope."""
    return problems.not_found("household", household_id)


def scope_clause(user: Principal) -> sa.ColumnElement[bool]:
    """WHERE clause limiting households to the caller's scope."""
    return auth.scope_clause(user, H)


def is_uuid(value: str) -> bool:
    """Whether `value` is a UUID (anything else cannot be a household id)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def jsonable(value: Any) -> Any:
    """Dates as ISO strings, recursively (for JSONB columns and event payloads)."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


# --- snapshots -----------------------------------------------------------------------------

def member_snapshot(m: Any) -> dict[str, Any]:
    """A member as events carry it (MemberV1)."""
    return {"member_id": str(m["id"]), "full_name": m["full_name"],
            "national_id": m["national_id"], "date_of_birth": jsonable(m["date_of_birth"]),
            "sex": m["sex"], "relation": m["relation"], "ethnicity": m.get("ethnicity"),
            "disability": m.get("disability")}


def snapshot(h: Any, members: Iterable[Any]) -> dict[str, Any]:
    """The household as every event carries it (HouseholdSnapshotV1, JSON-ready)."""
    current = [m for m in members if m.get("removed_at") is None]
    head = next((m["full_name"] for m in current if m["relation"] == domain.HEAD), h["head_name"])
    verification = list(h.get("verification") or [])
    return {
        "household_id": str(h["id"]), "version": h["version"], "status": h["status"],
        "external_ref": h.get("external_ref"), "area_type": h["area_type"],
        "location": {"province_code": h["province_code"], "commune_code": h["commune_code"],
                     "village": h["village"]},
        "address": h.get("address"), "phone": h.get("phone"), "head_name": head,
        "members": [member_snapshot(m) for m in current],
        "verification_requested": bool(verification),
        "verification_complaint_ids": [v["complaint_id"] for v in verification],
        "possible_duplicates": list(h.get("possible_duplicates") or []),
        "current_survey_id": str(h["current_survey_id"]) if h.get("current_survey_id") else None,
        "archive_reason": h.get("archive_reason"),
    }


def survey_snapshot(s: Any) -> dict[str, Any]:
    """A survey as events carry it (SurveyV1)."""
    return {"survey_id": str(s["id"]), "survey_date": jsonable(s["survey_date"]),
            "review_round": s["review_round"],
            "income_per_capita_vnd": int(s["income_per_capita_vnd"]),
            "deprivations": dict(s["deprivations"]), "facts": dict(s.get("facts") or {}),
            "surveyor": s.get("surveyor"), "notes": s.get("notes"),
            "recorded_by": s.get("recorded_by"),
            "visit_id": str(s["visit_id"]) if s.get("visit_id") else None}


# --- loading -------------------------------------------------------------------------------

async def load(session: AsyncSession, *, household_id: str, user: Principal,
               for_update: bool = False) -> tuple[Any, list[Any]]:
    """The household row and all its member rows (404 when unknown or outside scope)."""
    if not is_uuid(household_id):
        raise not_found(household_id)
    q = sa.select(H).where(H.c.id == household_id)
    if for_update:
        q = q.with_for_update()
    row = (await session.execute(q)).mappings().first()
    if row is None or not user.covers(province_code=row["province_code"],
                                      commune_code=row["commune_code"]):
        raise not_found(household_id)
    members = (await session.execute(
        sa.select(M).where(M.c.household_id == household_id).order_by(M.c.position)
    )).mappings().all()
    return row, list(members)


def check_version(row: Any, *, if_match: str | None, required: bool) -> None:
    """Optimistic concurrency: 428 without If-Match (when required), 412 on a stale version."""
    if if_match is None:
        if required:
            raise Problem(428, "If-Match with the household's current version (its ETag) is "
                               "required")
        return
    expected = domain.parse_if_match(if_match)
    if expected is None:
        raise Problem(412, f"unreadable If-Match {if_match!r}; send the ETag, e.g. \"3\"",
                      current_version=row["version"])
    if expected != row["version"]:
        raise Problem(412, f"version {expected} is stale; the household is at version "
                           f"{row['version']}", current_version=row["version"],
                      headers={"ETag": f'"{row["version"]}"'})


def check_active(row: Any) -> None:
    """Archived households are read-only."""
    if row["status"] != "active":
        raise Problem(409, f"household {row['id']} is archived; it can no longer change")


async def communes(session: AsyncSession, codes: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Commune code → (province code, default area type) for the given codes."""
    a = tables.admin_unit
    rows = await session.execute(sa.select(a.c.code, a.c.parent_code, a.c.area_type).where(
        a.c.level == "commune", a.c.code.in_(set(codes))))
    return {r.code: (r.parent_code, r.area_type) for r in rows}


async def check_location(session: AsyncSession, location: schemas.LocationIn) -> str:
    """422 when the commune is unknown or not in the province; return its default area type."""
    known = await communes(session, [location.commune_code])
    bad = domain.location_violations(province_code=location.province_code,
                                     commune_code=location.commune_code, communes=known)
    if bad:
        raise invalid(bad)
    return known[location.commune_code][1]


async def national_id_conflicts(session: AsyncSession, *, national_ids: Sequence[str],
                                user: Principal, fields: Sequence[str],
                                exclude_member: str | None = None) -> None:
    """409 when a national ID belongs to an active member elsewhere (naming the household only
    when it is inside the caller's scope)."""
    q = (sa.select(M.c.national_id, M.c.household_id, H.c.province_code, H.c.commune_code)
         .join(H, H.c.id == M.c.household_id)
         .where(M.c.active, M.c.national_id.in_(list(national_ids))))
    if exclude_member:
        q = q.where(M.c.id != exclude_member)
    rows = (await session.execute(q)).all()
    if not rows:
        return
    errors, visible = [], []
    for r in rows:
        field = fields[list(national_ids).index(r.national_id)]
        if user.covers_row(r):
            message = f"already registered in household {r.household_id}"
            visible.append(str(r.household_id))
        else:
            message = "already registered"
        errors.append({"field": field, "message": message})
    extra: dict[str, Any] = {"conflicting_household_id": visible[0]} if visible else {}
    raise Problem(409, "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                  errors=errors, **extra)


async def possible_duplicates(session: AsyncSession, *, commune_code: str,
                              people: Sequence[tuple[str, date]],
                              exclude_household: str | None = None) -> list[str]:
    """Active households of the commune with a member of the same normalised name and birth date."""
    if not people:
        return []
    q = (sa.select(M.c.household_id).distinct().join(H, H.c.id == M.c.household_id)
         .where(H.c.commune_code == commune_code, H.c.status == "active", M.c.active,
                sa.tuple_(M.c.name_key, M.c.date_of_birth).in_(list(people))))
    if exclude_household:
        q = q.where(M.c.household_id != exclude_household)
    return sorted(str(r) for r in (await session.scalars(q)).all())


def search_text(members: Iterable[Any]) -> str:
    """What `q` matches: the normalised names of the current members."""
    return " | ".join(m.get("name_key") or domain.normalise_name(m["full_name"])
                      for m in members if m.get("removed_at") is None)


@contextlib.asynccontextmanager
async def unique_or_409(what: str) -> AsyncIterator[None]:
    """A concurrent writer took the same national ID or external_ref after our checks: 409."""
    try:
        yield
    except IntegrityError as exc:
        text = str(exc.orig)
        field = ("external_ref" if "external_ref" in text
                 else "national_id" if "national_id" in text else what)
        raise Problem(409, f"{field}: already registered (a concurrent request took it)",
                      errors=[{"field": field, "message": "already registered"}]) from exc


# --- recording a change --------------------------------------------------------------------

async def record(session: AsyncSession, outbox: Outbox, *, household_id: str, version: int,
                 type: str, data: dict[str, Any], changes: list[dict[str, Any]],
                 actor: str | None, reason: str | None,
                 causation: Envelope | None = None) -> Envelope:
    """Write the version's history row and its event (outbox), in the caller's transaction."""
    env = outbox.new(type=type, data=jsonable(data), subject=household_id, causation=causation)
    await session.execute(sa.insert(V).values(
        household_id=household_id, version=version, event_id=env.id, event_type=type,
        actor=actor, reason=reason, changes=jsonable(changes)))
    await outbox.add(session, events.TOPIC, env)
    return env


async def current_survey(session: AsyncSession, survey_id: str | None) -> Any:
    """The survey row, or None."""
    if not survey_id:
        return None
    return (await session.execute(sa.select(S).where(S.c.id == survey_id))).mappings().first()


def survey_read(s: Any, *, current_id: str | None) -> schemas.SurveyRead:
    """A survey row as the API returns it."""
    return schemas.SurveyRead(
        survey_id=str(s["id"]), household_id=str(s["household_id"]), survey_date=s["survey_date"],
        review_round=s["review_round"], income_per_capita_vnd=s["income_per_capita_vnd"],
        deprivations=s["deprivations"], facts=s["facts"] or {}, surveyor=s["surveyor"],
        notes=s["notes"], recorded_by=s["recorded_by"], recorded_at=s["created_at"],
        visit_id=str(s["visit_id"]) if s.get("visit_id") else None,
        is_current=current_id is not None and str(s["id"]) == str(current_id))


def household_read(h: Any, members: Iterable[Any], *, survey: Any = None,
                   event_id: str | None = None) -> schemas.HouseholdRead:
    """A household as the API returns it."""
    snap = snapshot(h, members)
    return schemas.HouseholdRead(
        household_id=snap["household_id"], version=h["version"], status=h["status"],
        external_ref=h["external_ref"], area_type=h["area_type"],
        location=schemas.LocationIn(**snap["location"]), address=h["address"], phone=h["phone"],
        head_name=snap["head_name"],
        members=[schemas.MemberRead(**m) for m in snap["members"]],
        verification_requested=snap["verification_requested"],
        verification_requests=[schemas.VerificationRead(**v) for v in h["verification"] or []],
        possible_duplicates=snap["possible_duplicates"], archive_reason=h["archive_reason"],
        current_survey=survey_read(survey, current_id=h["current_survey_id"]) if survey else None,
        created_at=h["created_at"], updated_at=h["updated_at"], event_id=event_id)


async def updated_row(session: AsyncSession, household_id: str, values: dict[str, Any]) -> Any:
    """Apply `values` (version included) to the household and return the new row."""
    return (await session.execute(
        sa.update(H).where(H.c.id == household_id)
        .values(**values, updated_at=sa.func.now()).returning(*H.c)
    )).mappings().one()


async def member_rows(session: AsyncSession, household_id: str) -> list[Any]:
    """All member rows of a household, in order."""
    return list((await session.execute(
        sa.select(M).where(M.c.household_id == household_id).order_by(M.c.position)
    )).mappings().all())


def violations_or_none(violations: list[domain.Violation]) -> None:
    """Raise 422 if there is any violation."""
    if violations:
        raise invalid(violations)


# --- what a role may see -------------------------------------------------------------------

def sees_personal_data(user: Principal) -> bool:
    """Whether the caller sees national IDs, birth dates and phones in full (the writers)."""
    return user.role in WRITERS


def household_view(read: schemas.HouseholdRead,
                   user: Principal) -> schemas.HouseholdRead | schemas.HouseholdReadMasked:
    """The household as the caller may see it: in full for writers, masked for readers."""
    if sees_personal_data(user):
        return read
    return schemas.HouseholdReadMasked(
        **read.model_dump(exclude={"access", "phone", "members", "current_survey"}),
        current_survey=read.current_survey,
        members=[schemas.MemberReadMasked(
            **m.model_dump(exclude={"national_id", "date_of_birth"}),
            national_id=privacy.mask_national_id(m.national_id) or "",
            birth_year=m.date_of_birth.year) for m in read.members])


def change_view(change: Mapping[str, Any], *, full: bool) -> schemas.FieldChangeRead:
    """A field-level change as the caller may see it (personal values redacted for readers)."""
    if full or privacy.leaf(str(change["field"])) not in privacy.PERSONAL_KEYS:
        return schemas.FieldChangeRead(**change)
    return schemas.FieldChangeRead(**privacy.redact(dict(change)), redacted=True)
