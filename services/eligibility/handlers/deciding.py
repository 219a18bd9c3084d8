"""Decide households (batched): classify under the rule set in force, keep the decision only when
the outcome changed, recompute programme eligibility, and write the events — one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from services.eligibility import domain, events, tables
from services.eligibility.handlers import rulesets
from services.eligibility.handlers.common import Service, jsonable
from shared.db import write_rows
from shared.envelope import Envelope, utcnow

log = logging.getLogger("everydoor.eligibility")

H = tables.household
C = tables.classification

Row = dict[str, Any]


@dataclass(frozen=True)
class Trigger:
    """What caused a re-decision: a registry event, or a re-evaluation job."""

    event: Envelope | None = None
    job_id: str | None = None

    @property
    def event_id(self) -> str | None:
        """The causing event's id."""
        return self.event.id if self.event is not None else None


def standing_of(row: Row) -> domain.Standing:
    """The recognized standing stored on a household row."""
    return domain.Standing(
        category=row["recognized_category"], recognized_on=row["recognized_on"],
        deprived=tuple(row["recognized_deprived"] or ()), ruleset_id=row["recognized_ruleset_id"],
        escaped_poverty_on=row["escaped_poverty_on"], just_escaped_until=row["just_escaped_until"],
        archived=row["status"] == "archived")


def decide(svc: Service, row: Row) -> tuple[domain.Decision, domain.RuleSet] | None:
    """The decision the current inputs give (None: archived, no survey, or no rule set)."""
    survey = row["survey"]
    if row["status"] == "archived" or not survey:
        return None
    try:
        ruleset = svc.rulebook.select(date.fromisoformat(survey["survey_date"]),
                                      row["province_code"])
    except domain.NoRuleSet as exc:
        log.warning("household %s: %s; not decided", row["id"], exc)
        return None
    decision = domain.classify(ruleset, area_type=row["area_type"],
                               income_per_capita_vnd=int(survey["income_per_capita_vnd"]),
                               deprivations=survey.get("deprivations") or {})
    return decision, ruleset


def _published_standing(row: Row) -> tuple[str | None, str]:
    """Category and status carried by programme events (recognized standing first)."""
    if row["status"] == "archived":
        return row["recognized_category"] or row["current_category"], "archived"
    if row["recognized_category"] is not None:
        return row["recognized_category"], "recognized"
    return row["current_category"], "provisional"


def programs_of(svc: Service, row: Row) -> list[domain.ProgramStatus]:
    """Programme eligibility from a household's recognized standing, as of today."""
    return domain.evaluate(svc.catalogue, standing_of(row), today=svc.today(),
                           indicator_names=svc.indicator_names())


def _decided_event(svc: Service, row: Row, values: Row, trigger: Trigger) -> Envelope:
    data = events.ClassificationDecidedV1(
        classification_id=values["id"], household_id=row["id"], category=values["category"],
        previous_category=values["previous_category"], status="provisional",
        ruleset_id=values["ruleset_id"], survey_id=values["survey_id"],
        survey_date=values["survey_date"], review_round=values["review_round"],
        area_type=values["area_type"], province_code=values["province_code"],
        commune_code=values["commune_code"], village=values["village"],
        head_name=values["head_name"], explanation=events.ExplanationV1(**values["explanation"]),
        trigger_event_id=values["trigger_event_id"], decided_at=values["decided_at"],
        reevaluation_job_id=trigger.job_id,
    ).model_dump(mode="json")
    return svc.outbox.new(type=events.CLASSIFICATION_DECIDED, data=data, subject=row["id"],
                          causation=trigger.event, correlation_id=trigger.job_id)


def _programs_event(svc: Service, row: Row, stored: Row, trigger: Trigger) -> Envelope:
    previous = {p["program_code"]: p["eligible"]
                for p in ((row["programs"] or {}).get("programs") or [])}
    programs = stored["programs"]
    data = events.ProgramEligibilityChangedV1(
        household_id=row["id"], programs=[events.ProgramStatus(**p) for p in programs],
        changed=[p["program_code"] for p in programs
                 if previous.get(p["program_code"]) != p["eligible"]],
        category=stored["category"], status=stored["status"], commune_code=row["commune_code"],
        village=row["village"], head_name=row["head_name"], as_of=stored["as_of"],
        province_code=row["province_code"],
        classification_id=row["recognized_classification_id"],
        just_escaped_until=row["just_escaped_until"],
    ).model_dump(mode="json")
    return svc.outbox.new(type=events.PROGRAM_ELIGIBILITY_CHANGED, data=data, subject=row["id"],
                          causation=trigger.event, correlation_id=trigger.job_id)


async def refresh(session: Any, svc: Service, rows: Sequence[Row], *,
                  trigger: Trigger | dict[str, Trigger]) -> int:
    """Re-decide household rows (locked by the caller) and publish only what changed.

    A new classification is written (provisional; earlier provisional ones superseded) only
    when the outcome differs from the current one; the programme list is re-published only when
    it, or the category/status it carries, changed. Returns how many decisions changed.
    Decides by the rule sets active in the database (a reload on another replica included).
    """
    await rulesets.sync(session, svc)
    now = utcnow()
    new_rows: list[Row] = []
    superseded: list[Row] = []
    updates: list[Row] = []
    envelopes: list[Envelope] = []
    for original in rows:
        row = dict(original)
        cause = trigger[row["id"]] if isinstance(trigger, dict) else trigger
        changed = False
        made = decide(svc, row)
        if made is not None:
            decision, ruleset = made
            survey = row["survey"]
            fingerprint = decision.fingerprint(survey_id=survey.get("survey_id"))
            if fingerprint != row["current_fingerprint"]:
                values = _classification(row, decision, ruleset, fingerprint, cause, now)
                new_rows.append(values)
                if row["current_classification_id"] is not None:
                    superseded.append({"b_old": row["current_classification_id"],
                                       "b_new": values["id"]})
                envelopes.append(_decided_event(svc, row, values, cause))
                row.update(current_classification_id=values["id"],
                           current_category=decision.category, current_ruleset_id=ruleset.id,
                           current_fingerprint=fingerprint)
                changed = True
        programs_changed = False
        if row["current_classification_id"] is not None or row["programs"] is not None:
            category, status = _published_standing(row)
            programs = [p.as_dict() for p in programs_of(svc, row)]
            stored = {"category": category, "status": status, "programs": programs}
            previous = row["programs"] or {}
            if {k: previous.get(k) for k in stored} != stored:
                stored["as_of"] = now.isoformat()
                envelopes.append(_programs_event(svc, row, stored | {"as_of": now}, cause))
                row.update(programs=stored, programs_as_of=now)
                programs_changed = True
        if changed or programs_changed:
            updates.append({f"b_{k}": row[k] for k in _UPDATED})
    await write_rows(session, C, new_rows)
    if superseded:
        # At most one provisional decision per household: the current one (a recognized one
        # stays recognized until a later one is recognized).
        await session.execute(
            sa.update(C).where(C.c.id == sa.bindparam("b_old"), C.c.status == "provisional")
            .values(status="superseded", superseded_at=now, superseded_by=sa.bindparam("b_new")),
            superseded)
    if updates:
        await session.execute(
            sa.update(H).where(H.c.id == sa.bindparam("b_id"))
            .values(**{k: sa.bindparam(f"b_{k}") for k in _UPDATED if k != "id"},
                    updated_at=now), updates)
    if envelopes:
        await svc.emit(session, *envelopes)
    return len(new_rows)


_UPDATED = ("id", "current_classification_id", "current_category", "current_ruleset_id",
            "current_fingerprint", "programs", "programs_as_of")


def _classification(row: Row, decision: domain.Decision, ruleset: domain.RuleSet,
                    fingerprint: str, trigger: Trigger, now: Any) -> Row:
    survey = row["survey"]
    explanation = decision.explanation.as_dict() | {
        "survey_id": survey.get("survey_id"), "survey_event_id": row["survey_event_id"],
        "trigger_event_id": trigger.event_id, "reevaluation_job_id": trigger.job_id,
        "ruleset_digest": ruleset.digest,
    }
    return {
        "id": str(uuid.uuid4()), "household_id": row["id"], "category": decision.category,
        "previous_category": row["current_category"], "status": "provisional",
        "ruleset_id": ruleset.id, "ruleset_digest": ruleset.digest,
        "survey_id": survey.get("survey_id"),
        "survey_date": date.fromisoformat(survey["survey_date"]),
        "review_round": survey.get("review_round"), "area_type": row["area_type"],
        "province_code": row["province_code"], "commune_code": row["commune_code"],
        "village": row["village"], "head_name": row["head_name"],
        "explanation": jsonable(explanation), "fingerprint": fingerprint,
        "trigger_event_id": trigger.event_id, "reevaluation_job_id": trigger.job_id,
        "decided_at": now,
    }
