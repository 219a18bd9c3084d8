"""The decision events are built as plain data on the hot path: they must be exactly what their
payload models would have produced — same fields, values and order (no I/O)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime

import pytest
from pydantic import TypeAdapter

from services.eligibility import domain, events, tables
from services.eligibility.config import PROGRAMMES_FILE, RULESETS_DIR, Settings
from services.eligibility.handlers import deciding
from services.eligibility.handlers.common import Service, load_catalogue, load_rulebook
from shared.envelope import Envelope
from shared.outbox import Outbox

SVC = Service(settings=Settings(), rulebook=load_rulebook([RULESETS_DIR]),
              catalogue=load_catalogue(PROGRAMMES_FILE),
              outbox=Outbox(tables.platform, service="eligibility"))
NOW = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)
STANDINGS = [
    domain.Standing(),
    domain.Standing(archived=True),
    domain.Standing(category="poor", recognized_on=date(2026, 3, 1),
                    deprived=("housing_quality", "latrine"), ruleset_id="VN-MDP-2022"),
    domain.Standing(category="near_poor", recognized_on=date(2026, 3, 1),
                    ruleset_id="VN-MDP-2022", escaped_poverty_on=date(2026, 3, 1),
                    just_escaped_until=date(2029, 3, 1)),
    domain.Standing(category="not_poor", recognized_on=date(2025, 1, 31),
                    ruleset_id="VN-MDP-2022", escaped_poverty_on=date(2025, 1, 31),
                    just_escaped_until=date(2026, 1, 31)),
]


def household(rng: random.Random, standing: domain.Standing, *, year: int) -> dict:
    """A household row as the consumer or a re-evaluation holds it."""
    codes = [i.code for i in SVC.rulebook.all[-1].indicators] + ["not_an_indicator"]
    answers = {c: rng.choice([True, False, False, None if rng.random() < 0.1 else False])
               for c in codes}
    return {
        "id": str(uuid.uuid4()), "area_type": rng.choice(["rural", "urban"]),
        "province_code": "01", "commune_code": "01001", "village": "Thôn 1", "head_name": "Hộ",
        "status": "archived" if standing.archived else "active",
        "survey": {"survey_id": str(uuid.uuid4()), "survey_date": f"{year}-09-01",
                   "review_round": "periodic",
                   "income_per_capita_vnd": rng.randint(800_000, 5_000_000),
                   "deprivations": answers},
        "survey_event_id": str(uuid.uuid4()),
        "current_category": rng.choice([None, "poor", "middle"]),
        "recognized_classification_id": str(uuid.uuid4()) if standing.category else None,
        "recognized_category": standing.category, "recognized_on": standing.recognized_on,
        "recognized_deprived": list(standing.deprived), "recognized_ruleset_id":
            standing.ruleset_id, "escaped_poverty_on": standing.escaped_poverty_on,
        "just_escaped_until": standing.just_escaped_until,
        "programs": rng.choice([None, {"programs": [
            {"program_code": "VBSP-POOR-LOAN", "eligible": True, "name": "x", "reason": "y"}]}]),
    }


@pytest.mark.parametrize("job_id", [None, str(uuid.uuid4())])
def test_decided_and_programme_events_equal_their_models_dumps(job_id):
    rng = random.Random(3)
    cause = Envelope(type="registry.household.surveyed.v1", source="/services/registry",
                     data={}, subject="h", traceparent=None)
    trigger = deciding.Trigger(event=None if job_id else cause, job_id=job_id)
    now_json = TypeAdapter(datetime).dump_python(NOW, mode="json")
    checked = 0
    for n in range(300):
        standing = STANDINGS[n % len(STANDINGS)]
        row = household(rng, standing, year=2026 + n % 3)
        made = deciding.decide(SVC, row)
        if made is not None:
            decision, ruleset = made
            values = deciding._classification(row, decision, ruleset, "fp", trigger, NOW)
            data = deciding._decided_event(SVC, row, values, trigger, now_json).data
            model = events.ClassificationDecidedV1.model_validate(data).model_dump(mode="json")
            assert model == data
            assert list(model) == list(data)
            assert list(model["explanation"]) == list(data["explanation"])
            checked += 1
        programs = SVC.programmes(deciding.standing_of(row), date(2026, 6, 1))
        assert programs == [p.as_dict() for p in domain.evaluate(
            SVC.catalogue, deciding.standing_of(row), today=date(2026, 6, 1),
            indicator_names=SVC.indicator_names())]
        stored = {"category": row["recognized_category"], "status": "recognized",
                  "programs": programs, "as_of": NOW.isoformat()}
        data = deciding._programs_event(SVC, row, stored, trigger, now_json).data
        model = events.ProgramEligibilityChangedV1.model_validate(data).model_dump(mode="json")
        assert model == data and list(model) == list(data)
    assert checked > 200
