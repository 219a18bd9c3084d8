"""Decide households (batched): classify under the rule set in force, keep the decision only when
the outcome changed, recompute programme eligibility, and write the events — one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from services.eligibility import domain, events, tables
from services.eligibility.handlers import rulesets
from services.eligibility.handlers.common import Service
from shared.db import json_text, write_rows
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


def _json_date(value: Any) -> Any:
    """A date as its event JSON (ISO), as the payload model would render it."""
    return value.isoformat() if isinstance(value, date) else value


def _explanation_data(e: Row) -> Row:
    """The stored explanation as `ExplanationV1` renders it (its fields in order, then any
    others); every value is already JSON (strings, numbers, lists of them)."""
    out = {k: e[k] for k in _EXPLANATION_FIELDS if k in e}
    if len(out) != len(e):
        out |= {k: v for k, v in e.items() if k not in out}
    out["deprived"] = [{"code": d["code"], "name_vi": d["name_vi"], "name_en": d["name_en"]}
                       for d in e.get("deprived", ())]
    return out


_EXPLANATION_FIELDS = tuple(events.ExplanationV1.model_fields)


def _decided_event(svc: Service, row: Row, values: Row, trigger: Trigger,
                   decided_at: str) -> Envelope:
    """`classification.decided.v1`, its payload built as the model's JSON dump would be (the
    values are ours and of the right types; tests hold the two equal), without a model
    instance per decision."""
    data = {
        "classification_id": values["id"], "household_id": row["id"],
        "category": values["category"], "previous_category": values["previous_category"],
        "status": "provisional", "ruleset_id": values["ruleset_id"],
        "survey_id": values["survey_id"], "survey_date": _json_date(values["survey_date"]),
        "review_round": values["review_round"], "area_type": values["area_type"],
        "province_code": values["province_code"], "commune_code": values["commune_code"],
        "village": values["village"], "head_name": values["head_name"],
        "explanation": _explanation_data(values["explanation"]),
        "trigger_event_id": values["trigger_event_id"], "decided_at": decided_at,
        "reevaluation_job_id": trigger.job_id,
    }
    return svc.outbox.new(type=events.CLASSIFICATION_DECIDED, data=data, subject=row["id"],
                          causation=trigger.event, correlation_id=trigger.job_id)


def _programs_event(svc: Service, row: Row, stored: Row, trigger: Trigger,
                    as_of: str) -> Envelope:
    """`program_eligibility.changed.v1`, built as the model's JSON dump would be."""
    previous = {p["program_code"]: p["eligible"]
                for p in ((row["programs"] or {}).get("programs") or [])}
    programs = stored["programs"]
    data = {
        "household_id": row["id"],
        "programs": [{"program_code": p["program_code"], "eligible": p["eligible"],
                      "reason": p["reason"], "name": p["name"]} for p in programs],
        "changed": [p["program_code"] for p in programs
                    if previous.get(p["program_code"]) != p["eligible"]],
        "category": stored["category"], "status": stored["status"],
        "commune_code": row["commune_code"], "village": row["village"],
        "head_name": row["head_name"], "as_of": as_of, "province_code": row["province_code"],
        "classification_id": row["recognized_classification_id"],
        "just_escaped_until": _json_date(row["just_escaped_until"]),
    }
    return svc.outbox.new(type=events.PROGRAM_ELIGIBILITY_CHANGED, data=data, subject=row["id"],
                          causation=trigger.event, correlation_id=trigger.job_id)


_JSON_TIME = TypeAdapter(datetime)


@dataclass
class Decisions:
    """What re-deciding household rows gave, before anything is written."""

    rows: list[Row]  # every row passed in, with its decision columns as they are now
    updated: list[Row]  # those whose decision columns changed
    new_rows: list[Row]  # classifications to insert
    superseded: list[tuple[str, str]]  # (earlier provisional classification id, new id)
    envelopes: list[Envelope]
    now: datetime


def redecide(svc: Service, rows: Sequence[Row], *,
             trigger: Trigger | dict[str, Trigger]) -> Decisions:
    """Re-decide household rows in memory (the rule book synced by the caller).

    A new classification only when the outcome differs from the current one; the programme
    list only when it, or the category/status it carries, changed."""
    now = utcnow()
    now_json = _JSON_TIME.dump_python(now, mode="json")
    today = svc.today()
    out = Decisions(rows=[], updated=[], new_rows=[], superseded=[], envelopes=[], now=now)
    for original in rows:
        row = dict(original)
        out.rows.append(row)
        cause = trigger[row["id"]] if isinstance(trigger, dict) else trigger
        changed = False
        made = decide(svc, row)
        if made is not None:
            decision, ruleset = made
            survey = row["survey"]
            fingerprint = decision.fingerprint(survey_id=survey.get("survey_id"))
            if fingerprint != row["current_fingerprint"]:
                values = _classification(row, decision, ruleset, fingerprint, cause, now)
                out.new_rows.append(values)
                if row["current_classification_id"] is not None:
                    out.superseded.append((row["current_classification_id"], values["id"]))
                out.envelopes.append(_decided_event(svc, row, values, cause, now_json))
                row.update(current_classification_id=values["id"],
                           current_category=decision.category, current_ruleset_id=ruleset.id,
                           current_fingerprint=fingerprint)
                changed = True
        programs_changed = False
        if row["current_classification_id"] is not None or row["programs"] is not None:
            category, status = _published_standing(row)
            programs = svc.programmes(standing_of(row), today)
            stored = {"category": category, "status": status, "programs": programs}
            previous = row["programs"] or {}
            if {k: previous.get(k) for k in stored} != stored:
                stored["as_of"] = now.isoformat()
                out.envelopes.append(_programs_event(svc, row, stored, cause, now_json))
                row.update(programs=stored, programs_as_of=now)
                programs_changed = True
        if changed or programs_changed:
            out.updated.append(row)
    return out


async def write_decisions(session: Any, svc: Service, d: Decisions, *,
                          households: bool = True) -> None:
    """Write what `redecide` gave: the new classifications, the superseded ones, the
    households' decision columns (unless the caller writes the rows itself: `households`
    false) and the events — a constant number of statements."""
    await write_rows(session, C, d.new_rows)
    if d.superseded:
        # At most one provisional decision per household: the current one (a recognized one
        # stays recognized until a later one is recognized).
        await session.execute(_SUPERSEDE, {"old": [o for o, _ in d.superseded],
                                           "new": [n for _, n in d.superseded], "at": d.now})
    if households and d.updated:
        await session.execute(_UPDATE_DECISIONS, {
            "ids": [r["id"] for r in d.updated],
            "cls": [r["current_classification_id"] for r in d.updated],
            "category": [r["current_category"] for r in d.updated],
            "ruleset": [r["current_ruleset_id"] for r in d.updated],
            "fingerprint": [r["current_fingerprint"] for r in d.updated],
            "programs": [json_or_none(r["programs"]) for r in d.updated],
            "programs_as_of": [r["programs_as_of"] for r in d.updated], "at": d.now})
    if d.envelopes:
        await svc.emit(session, *d.envelopes)


async def refresh(session: Any, svc: Service, rows: Sequence[Row], *,
                  trigger: Trigger | dict[str, Trigger]) -> int:
    """Re-decide household rows (locked by the caller) and publish only what changed.

    A new classification is written (provisional; earlier provisional ones superseded) only
    when the outcome differs from the current one; the programme list is re-published only when
    it, or the category/status it carries, changed. Returns how many decisions changed.
    Decides by the rule sets active in the database (a reload on another replica included).
    """
    await rulesets.sync(session, svc)
    d = redecide(svc, rows, trigger=trigger)
    await write_decisions(session, svc, d)
    return len(d.new_rows)


def json_or_none(value: Any) -> str | None:
    """A jsonb parameter passed as text (arrays of jsonb go in as text[])."""
    return None if value is None else json_text(value)


_SUPERSEDE = sa.text(
    "UPDATE classification c SET status = 'superseded', superseded_at = :at, "
    "superseded_by = u.new FROM unnest(CAST(:old AS uuid[]), CAST(:new AS uuid[])) AS u(old, new) "
    "WHERE c.id = u.old AND c.status = 'provisional'")
_UPDATE_DECISIONS = sa.text(
    "UPDATE household h SET current_classification_id = u.cls, current_category = u.category, "
    "current_ruleset_id = u.ruleset, current_fingerprint = u.fingerprint, "
    "programs = CAST(u.programs AS jsonb), programs_as_of = u.programs_as_of, updated_at = :at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:cls AS uuid[]), CAST(:category AS text[]), "
    "CAST(:ruleset AS text[]), CAST(:fingerprint AS text[]), CAST(:programs AS text[]), "
    "CAST(:programs_as_of AS timestamptz[])) "
    "AS u(id, cls, category, ruleset, fingerprint, programs, programs_as_of) WHERE h.id = u.id")


DECISION_COLUMNS = ("current_classification_id", "current_category", "current_ruleset_id",
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
        "explanation": explanation, "fingerprint": fingerprint,
        "trigger_event_id": trigger.event_id, "reevaluation_job_id": trigger.job_id,
        "decided_at": now,
    }
