"""One visit-import batch: validate lines, resolve households and cadres with a few set-based
selects, deduplicate by `external_ref`, COPY the visits and their events into the outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry import domain, events, schemas, tables
from services.registry.domain import imports as lines
from services.registry.handlers.common import H, M, actor_of, is_uuid, jsonable, snapshot
from services.registry.handlers.imports.batch import Counts, record_progress
from services.registry.handlers.visits import visit_snapshot
from shared.auth import Principal
from shared.db import copy_rows
from shared.runtime import Runtime
from shared.sanitize import json_errors

C, VI = tables.cadre, tables.visit


@dataclass
class VisitLine:
    """One visit line on its way in."""

    raw: lines.RawLine
    body: schemas.VisitImportLine | None = None
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, field, message)
    hash: str = ""

    def reject(self, field_name: str, message: str) -> None:
        """Add an error for this line."""
        self.errors.append((self.raw.line, field_name, message))


def validate(raw: lines.RawLine, *, today: date) -> VisitLine:
    """Schema and the visit rules of one line (no database): the same as POST …/visits."""
    line = VisitLine(raw)
    for v in raw.errors:
        line.reject(v.field, v.message)
    for unstorable in json_errors(raw.body, ("body",)):  # no NUL, no int past 64 bits
        line.reject(unstorable["field"], unstorable["message"])
    if raw.body is None or line.errors:
        return line
    try:
        body = schemas.VisitImportLine.model_validate(raw.body)
    except ValidationError as exc:
        for e in exc.errors():
            line.reject(".".join(str(p) for p in e["loc"]) or "line", e["msg"])
        return line
    if (body.household_id is None) == (body.household_external_ref is None):
        line.reject("household_id", "give household_id or household_external_ref (exactly one)")
    for v in domain.visit_violations(visited_on=body.visited_on, outcome=body.outcome,
                                     next_visit_due=body.next_visit_due, today=today):
        line.reject(v.field, v.message)
    if not line.errors:
        line.body = body
        line.hash = lines.content_hash(body.model_dump(mode="json"))
    return line


async def apply_batch(session: AsyncSession, rt: Runtime, *, job_id: str,
                      batch: list[lines.RawLine], user: Principal) -> Counts:
    """Validate, deduplicate and write one batch of visits (a fixed number of statements)."""
    checked = [validate(raw, today=date.today()) for raw in batch]
    counts = Counts()
    fresh = await _not_yet_recorded(session, [c for c in checked if not c.errors], user=user,
                                    counts=counts)
    households = await _households(session, fresh)
    cadres = await _cadres(session, fresh)
    accepted: list[tuple[VisitLine, Any, Any]] = []
    for c in fresh:
        assert c.body is not None
        field_name, named = (("household_id", c.body.household_id) if c.body.household_id
                             else ("household_external_ref", c.body.household_external_ref))
        h = households.get((field_name, named))
        if h is not None and not user.covers(province_code=h["province_code"],
                                             commune_code=h["commune_code"]):
            h = None  # as unknown: a line never tells what lies outside the caller's scope
        if h is None:
            c.reject(field_name, f"no household {named} in your scope")
        elif h["status"] != "active":
            c.reject(field_name, f"household {h['id']} is archived "
                                 f"({h['archive_reason'] or 'no reason given'}); a visit cannot "
                                 "be recorded")
        cadre = cadres.get(c.body.cadre_id)
        if cadre is None or not user.covers(province_code=cadre["province_code"],
                                            commune_code=cadre["commune_code"]):
            c.reject("cadre_id", f"no cadre {c.body.cadre_id} in your scope")
        elif h is not None and cadre["commune_code"] != h["commune_code"]:
            c.reject("cadre_id", f"{c.body.cadre_id} is not a cadre of commune "
                                 f"{h['commune_code']}, the household's")
        if not c.errors:
            accepted.append((c, h, cadre))
    if accepted:
        await _insert(session, rt, accepted, user=user, job_id=job_id)
    counts.accepted = len(accepted)
    await record_progress(session, job_id=job_id, checked=checked, counts=counts)
    return counts


async def _not_yet_recorded(session: AsyncSession, good: list[VisitLine], *, user: Principal,
                            counts: Counts) -> list[VisitLine]:
    """Lines whose external_ref is new; an unchanged re-upload is skipped, a changed one (or a
    second line of the file with the same ref and other data) rejected: a visit is immutable."""
    refs = [c.body.external_ref for c in good if c.body]
    existing: dict[str, Any] = {}
    if refs:
        rows = await session.execute(
            sa.select(VI.c.id, VI.c.external_ref, VI.c.import_hash, H.c.province_code,
                      H.c.commune_code).join(H, H.c.id == VI.c.household_id)
            .where(VI.c.external_ref.in_(refs)))
        existing = {r.external_ref: r for r in rows}
    seen: dict[str, VisitLine] = {}
    fresh = []
    for c in good:
        assert c.body is not None
        ref = c.body.external_ref
        if ref in seen:
            if seen[ref].hash == c.hash:
                counts.skipped += 1
            else:
                c.reject("external_ref", f"{ref} appears again with different data "
                                         f"(line {seen[ref].raw.line})")
            continue
        seen[ref] = c
        known = existing.get(ref)
        if known is None:
            fresh.append(c)
        elif not user.covers(province_code=known.province_code, commune_code=known.commune_code):
            c.reject("external_ref", "already recorded")
        elif known.import_hash == c.hash:
            counts.skipped += 1
        else:
            c.reject("external_ref", f"already recorded as visit {known.id} with different data; "
                                     "a visit is never changed")
    return fresh


async def _households(session: AsyncSession, fresh: list[VisitLine]) -> dict[tuple[str, Any], Any]:
    """The lines' households in one select, locked (no archive slips in between), keyed by
    ("household_id", id) and ("household_external_ref", ref)."""
    ids = sorted({c.body.household_id for c in fresh
                  if c.body and c.body.household_id and is_uuid(c.body.household_id)})
    refs = sorted({c.body.household_external_ref for c in fresh
                   if c.body and c.body.household_external_ref})
    if not ids and not refs:
        return {}
    rows = (await session.execute(
        sa.select(H).where(sa.or_(H.c.id.in_(ids), H.c.external_ref.in_(refs)))
        .order_by(H.c.id).with_for_update())).mappings().all()
    out: dict[tuple[str, Any], Any] = {}
    for r in rows:
        out[("household_id", str(r["id"]))] = r
        if r["external_ref"] is not None:
            out[("household_external_ref", r["external_ref"])] = r
    return out


async def _cadres(session: AsyncSession, fresh: list[VisitLine]) -> dict[str, Any]:
    ids = sorted({c.body.cadre_id for c in fresh if c.body and is_uuid(c.body.cadre_id)})
    if not ids:
        return {}
    rows = (await session.execute(sa.select(C).where(C.c.id.in_(ids)))).mappings().all()
    return {str(r["id"]): r for r in rows}


async def _insert(session: AsyncSession, rt: Runtime, accepted: list[tuple[VisitLine, Any, Any]],
                  *, user: Principal, job_id: str) -> None:
    """COPY the visits and their `household.visited` events (with the household as it is)."""
    household_ids = sorted({str(h["id"]) for _, h, _ in accepted})
    members: dict[str, list[Any]] = {}
    for m in (await session.execute(sa.select(M).where(M.c.household_id.in_(household_ids))
                                    .order_by(M.c.household_id, M.c.position))).mappings():
        members.setdefault(str(m["household_id"]), []).append(m)
    actor = actor_of(user)
    visits, envelopes = [], []
    for c, h, cadre in accepted:
        assert c.body is not None
        hid = str(h["id"])
        v = {"id": str(uuid.uuid4()), "household_id": hid, "cadre_id": str(cadre["id"]),
             "commune_code": h["commune_code"], "village": h["village"],
             "visited_on": c.body.visited_on, "outcome": c.body.outcome, "note": c.body.note,
             "next_visit_due": c.body.next_visit_due, "review_round": c.body.review_round,
             "recorded_by": actor, "external_ref": c.body.external_ref, "import_hash": c.hash}
        visits.append(v)
        envelopes.append(rt.outbox.new(
            type=events.HOUSEHOLD_VISITED, subject=hid, correlation_id=job_id, data=jsonable({
                "household_id": hid, "version": h["version"],
                "visit": visit_snapshot(v, cadre),
                "household": snapshot(h, members.get(hid, [])), "actor": actor,
                "import_id": job_id})))
    await copy_rows(session, VI, visits)
    await copy_rows(session, rt.outbox.table, rt.outbox.rows(events.TOPIC, envelopes))
    await rt.outbox.notify(session)
