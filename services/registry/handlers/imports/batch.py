"""One import batch: validate lines, deduplicate, multi-row inserts of rows and outbox events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any, Protocol

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas, tables
from services.registry.domain import imports as lines
from services.registry.handlers import surveys
from services.registry.handlers.common import (
    H,
    M,
    S,
    V,
    search_text,
    snapshot,
    survey_snapshot,
)
from services.registry.handlers.households import member_row
from shared.auth import Principal
from shared.db import copy_rows
from shared.envelope import Envelope
from shared.runtime import Runtime
from shared.sanitize import json_errors

J, E = tables.import_job, tables.import_error


@dataclass
class Line:
    """One import line on its way in."""

    raw: lines.RawLine
    body: schemas.ImportLine | None = None
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, field, message)
    household_hash: str = ""
    survey_hash: str | None = None

    def reject(self, field_name: str, message: str, line: int | None = None) -> None:
        """Add an error for this line."""
        self.errors.append((line or self.raw.line, field_name, message))


def read_lines(fh: IO[str], fmt: str, *, max_line: int = 1 << 20,
               kind: str = "households") -> Iterator[lines.RawLine]:
    """Households (or visits) from the spooled file, lazily; a line longer than `max_line`
    characters is rejected with its number, never read into memory."""
    bounded = lines.Bounded(fh, max_line)
    if fmt == "ndjson":
        return lines.ndjson_lines(bounded)
    return lines.visit_csv_lines(bounded) if kind == "visits" else lines.csv_lines(bounded)


def _line_of(raw: lines.RawLine, loc: tuple) -> int:
    if len(loc) >= 2 and loc[0] == "members" and isinstance(loc[1], int) \
            and loc[1] < len(raw.member_lines):
        return raw.member_lines[loc[1]]
    return raw.line


def validate(raw: lines.RawLine, *, user: Principal, communes: dict[str, tuple[str, str]],
             today: date) -> Line:
    """Schema, rules, location and scope of one line (no database)."""
    line = Line(raw)
    for v in raw.errors:
        line.reject(v.field, v.message)
    for unstorable in json_errors(raw.body, ("body",)):  # no NUL, no int past 64 bits
        line.reject(unstorable["field"], unstorable["message"])
    if raw.body is None or line.errors:
        return line
    try:
        body = schemas.ImportLine.model_validate(raw.body)
    except ValidationError as exc:
        for e in exc.errors():
            loc = tuple(e["loc"])
            line.reject(".".join(str(p) for p in loc) or "line", e["msg"], _line_of(raw, loc))
        return line
    members = [m.model_dump() for m in body.members]
    bad = domain.member_violations(members, today=today)
    if body.survey is not None:
        bad += surveys.survey_problems(body.survey, today=today, prefix="survey.")
        if body.survey.visit_id is not None:
            bad.append(domain.Violation("survey.visit_id", "not accepted in imports (record the "
                                                           "survey with POST …/surveys)"))
    bad += domain.location_violations(province_code=body.location.province_code,
                                      commune_code=body.location.commune_code, communes=communes)
    for v in bad:
        parts = v.field.split(".")
        loc = (parts[0], int(parts[1])) if len(parts) > 1 and parts[1].isdigit() else ()
        line.reject(v.field, v.message, _line_of(raw, loc))
    if not bad and not user.covers(province_code=body.location.province_code,
                                   commune_code=body.location.commune_code):
        line.reject("location.commune_code", f"commune {body.location.commune_code} is outside "
                                             "your scope")
    if line.errors:
        return line
    line.body = body
    household_part = body.model_dump(mode="json", exclude={"survey"})
    if household_part.get("area_type") is None:
        household_part["area_type"] = communes[body.location.commune_code][1]
    line.household_hash = lines.content_hash(household_part)
    if body.survey is not None:
        # visit_id (never set here) left out: hashes of earlier imports stay the same.
        line.survey_hash = lines.content_hash(body.survey.model_dump(mode="json",
                                                                     exclude={"visit_id"}))
    return line


class Checked(Protocol):
    """A validated line of any import kind: its raw line and its errors."""

    raw: lines.RawLine
    errors: list[tuple[int, str, str]]


@dataclass
class Counts:
    """Progress of one batch."""

    accepted: int = 0
    skipped: int = 0
    rejected: int = 0


async def apply_batch(session: AsyncSession, rt: Runtime, *, job_id: str,
                      batch: list[lines.RawLine], user: Principal,
                      communes: dict[str, tuple[str, str]]) -> Counts:
    """Validate, deduplicate and write one batch with multi-row inserts; record errors/progress."""
    today = date.today()
    checked = [validate(raw, user=user, communes=communes, today=today) for raw in batch]
    good = [c for c in checked if not c.errors]
    counts = Counts()
    existing = await _existing(session, [c.body.external_ref for c in good if c.body])
    new_lines: list[Line] = []
    seen_refs: dict[str, Line] = {}
    for c in good:
        assert c.body is not None
        ref = c.body.external_ref
        if ref in seen_refs:
            first = seen_refs[ref]
            if first.household_hash == c.household_hash and first.survey_hash == c.survey_hash:
                counts.skipped += 1
            else:
                c.reject("external_ref", f"{ref} appears again with different data "
                                         f"(line {first.raw.line})")
            continue
        seen_refs[ref] = c
        if ref in existing:
            await _existing_line(session, rt, c, existing[ref], user=user, job_id=job_id,
                                 counts=counts)
        else:
            new_lines.append(c)
    new_lines = await _check_national_ids(session, new_lines, user=user)
    if new_lines:
        await _insert_new(session, rt, new_lines, communes=communes, user=user, job_id=job_id)
    counts.accepted += len(new_lines)
    await record_progress(session, job_id=job_id, checked=checked, counts=counts)
    return counts


async def record_progress(session: AsyncSession, *, job_id: str, checked: Sequence[Checked],
                          counts: Counts) -> None:
    """Write a batch's per-line errors (one multi-row insert) and add its counts to the job."""
    errors = [(c, e) for c in checked for e in c.errors]
    counts.rejected = sum(1 for c in checked if c.errors)
    if errors:
        await session.execute(sa.insert(E), [
            {"job_id": job_id, "line": line,
             "external_ref": c.raw.external_ref and c.raw.external_ref.replace("\x00", "\\u0000"),
             "field": f, "message": msg[:2000]} for c, (line, f, msg) in errors])
    await session.execute(sa.update(J).where(J.c.id == job_id).values(
        total=J.c.total + len(checked), accepted=J.c.accepted + counts.accepted,
        skipped=J.c.skipped + counts.skipped, rejected=J.c.rejected + counts.rejected,
        heartbeat_at=sa.func.now()))


async def _existing(session: AsyncSession, refs: list[str]) -> dict[str, Any]:
    if not refs:
        return {}
    rows = (await session.execute(sa.select(H).where(H.c.external_ref.in_(refs)))).mappings()
    return {r["external_ref"]: r for r in rows}


async def _existing_line(session: AsyncSession, rt: Runtime, c: Line, row: Any, *,
                         user: Principal, job_id: str, counts: Counts) -> None:
    """A re-imported external_ref: skip if unchanged, record a new survey, else reject."""
    assert c.body is not None
    if not user.covers(province_code=row["province_code"], commune_code=row["commune_code"]):
        c.reject("external_ref", "already registered")
        return
    if row["import_hash"] != c.household_hash:
        c.reject("external_ref", f"already registered as household {row['id']} with different "
                                 "household data; change it with PATCH /v1/households/{id}")
        return
    if c.body.survey is None or c.survey_hash is None:
        counts.skipped += 1
        return
    known = await session.scalar(sa.select(sa.func.count()).select_from(S).where(
        S.c.household_id == row["id"], S.c.import_hash == c.survey_hash))
    if known:
        counts.skipped += 1
        return
    if row["status"] != "active":
        c.reject("external_ref", f"household {row['id']} is archived")
        return
    locked = (await session.execute(sa.select(H).where(H.c.id == row["id"]).with_for_update())
              ).mappings().one()
    await surveys.record_survey(session=session, outbox=rt.outbox, row=locked, body=c.body.survey,
                                actor=user.sub, import_id=job_id, import_hash=c.survey_hash)
    counts.accepted += 1


async def _check_national_ids(session: AsyncSession, candidates: list[Line], *,
                              user: Principal) -> list[Line]:
    """Reject lines whose national IDs are held by an active member, or by an earlier line."""
    ids = [m.national_id for c in candidates if c.body for m in c.body.members]
    taken: dict[str, Any] = {}
    if ids:
        rows = await session.execute(
            sa.select(M.c.national_id, M.c.household_id, H.c.province_code, H.c.commune_code)
            .join(H, H.c.id == M.c.household_id).where(M.c.active, M.c.national_id.in_(ids)))
        taken = {r.national_id: r for r in rows}
    claimed: dict[str, int] = {}
    out = []
    for c in candidates:
        assert c.body is not None
        for i, m in enumerate(c.body.members):
            line = _line_of(c.raw, ("members", i))
            if m.national_id in taken:
                r = taken[m.national_id]
                where = (f" in household {r.household_id}"
                         if user.covers(province_code=r.province_code,
                                        commune_code=r.commune_code) else "")
                c.reject(f"members.{i}.national_id", f"already registered{where}", line)
            elif m.national_id in claimed:
                c.reject(f"members.{i}.national_id",
                         f"already used on line {claimed[m.national_id]} of this file", line)
        if not c.errors:
            claimed.update({m.national_id: c.raw.line for m in c.body.members})
            out.append(c)
    return out


async def _insert_new(session: AsyncSession, rt: Runtime, new_lines: list[Line], *,
                      communes: dict[str, tuple[str, str]], user: Principal, job_id: str) -> None:
    """Multi-row inserts of households, members, surveys, versions and outbox rows."""
    households, members, survey_rows, versions = [], [], [], []
    envelopes: list[Envelope] = []
    plans = []
    for c in new_lines:
        assert c.body is not None
        hid = str(uuid.uuid4())
        rows = [member_row(m.model_dump(), household_id=hid, position=i)
                for i, m in enumerate(c.body.members)]
        plans.append((c, hid, rows))
    people = {(r["name_key"], r["date_of_birth"]) for _, _, rows in plans for r in rows}
    dup_index: dict[tuple[str, str, date], set[str]] = {}
    if people:
        keys, dobs = zip(*people, strict=True)
        # Join against the batch's (name, birth date) pairs: index lookups, not an OR list.
        wanted = sa.func.unnest(sa.cast(list(keys), ARRAY(sa.Text)),
                                sa.cast(list(dobs), ARRAY(sa.Date))
                                ).table_valued("name_key", "dob").render_derived(name="wanted")
        found = await session.execute(
            sa.select(M.c.household_id, M.c.name_key, M.c.date_of_birth, H.c.commune_code)
            .join(wanted, sa.and_(M.c.name_key == wanted.c.name_key,
                                  M.c.date_of_birth == wanted.c.dob))
            .join(H, H.c.id == M.c.household_id)
            .where(M.c.active, H.c.status == "active"))
        for f in found:
            dup_index.setdefault((f.commune_code, f.name_key, f.date_of_birth), set()).add(
                str(f.household_id))
    now_actor = user.sub
    for c, hid, rows in plans:
        assert c.body is not None
        body = c.body
        commune = body.location.commune_code
        dups: set[str] = set()
        for r in rows:
            key = (commune, r["name_key"], r["date_of_birth"])
            dups |= dup_index.get(key, set())
            dup_index.setdefault(key, set()).add(hid)
        dups.discard(hid)
        head = next(m.full_name for m in body.members if m.relation == domain.HEAD)
        h = {"id": hid, "external_ref": body.external_ref,
             "area_type": body.area_type or communes[commune][1],
             **body.location.model_dump(), "address": body.address, "phone": body.phone,
             "head_name": head, "search_text": search_text(rows), "status": "active",
             "version": 1, "archive_reason": None, "verification": [],
             "possible_duplicates": sorted(dups), "current_survey_id": None,
             "import_hash": c.household_hash, "created_by": now_actor}
        snap1 = snapshot(h, rows)  # JSON-ready (dates as ISO strings)
        reg = rt.outbox.new(type=events.HOUSEHOLD_REGISTERED, subject=hid, correlation_id=job_id,
                            data={"household_id": hid, "version": 1, "household": snap1,
                                  "possible_duplicates": sorted(dups), "actor": now_actor,
                                  "import_id": job_id})
        envelopes.append(reg)
        reason = f"import {job_id} line {c.raw.line}"
        versions.append({"household_id": hid, "version": 1, "event_id": reg.id,
                         "event_type": reg.type, "actor": now_actor, "reason": reason,
                         "changes": domain.diff(None, snap1)})
        if body.survey is not None:
            s = surveys.survey_values(body.survey, household_id=hid, actor=now_actor,
                                      import_hash=c.survey_hash)
            survey_rows.append(s)
            h = {**h, "version": 2, "current_survey_id": s["id"]}
            snap2 = {**snap1, "version": 2, "current_survey_id": s["id"]}
            sv = rt.outbox.new(type=events.HOUSEHOLD_SURVEYED, subject=hid, correlation_id=job_id,
                               data={"household_id": hid, "version": 2,
                                     "survey": survey_snapshot(s), "is_current": True,
                                     "household": snap2, "actor": now_actor,
                                     "import_id": job_id})
            envelopes.append(sv)
            # The same diff the API path computes: the survey, and it became current.
            versions.append({"household_id": hid, "version": 2, "event_id": sv.id,
                             "event_type": sv.type, "actor": now_actor, "reason": reason,
                             "changes": [
                                 {"field": "surveys", "before": None, "after": s["id"]},
                                 {"field": "current_survey_id", "before": None,
                                  "after": s["id"]}]})
        households.append(h)
        members.extend(rows)
    # COPY in the batch's transaction (foreign keys: households first); outbox rows in the
    # outbox's own row format, then the relay's wake-up.
    await copy_rows(session, H, households)
    await copy_rows(session, M, members)
    await copy_rows(session, S, survey_rows)
    await copy_rows(session, V, versions)
    await copy_rows(session, rt.outbox.table, rt.outbox.rows(events.TOPIC, envelopes))
    await rt.outbox.notify(session)

