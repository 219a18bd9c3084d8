"""Re-decide only when a registry event changes an input, and publish only what changed."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from services.registry import events as registry
from shared.envelope import Envelope
from tests.eligibility.conftest import INDICATORS_2022, Stack, admin
from tests.support.kafka import produce_event
from tests.support.wait import eventually

DECIDED = "eligibility.classification.decided.v1"
PROGRAMS = "eligibility.program_eligibility.changed.v1"


async def history(stack: Stack, household_id: str) -> list[dict]:
    r = await stack.client.get(f"/v1/households/{household_id}/classifications", headers=admin())
    assert r.status_code == 200, r.text
    return r.json()


async def test_member_and_address_changes_do_not_redecide_area_type_does(stack: Stack):
    h = stack.household(area_type="rural")
    await h.register()
    await h.survey(income=1_800_000, deprived=("telecom",))
    first = await stack.classification(h.id)
    assert first["category"] == "middle"  # rural line 1,500,000 < 1,800,000 ≤ 2,250,000

    await h.add_member("Lò Thị Hoa")
    await h.update(village="Thôn Mới", head_name="Lò Thị Hoa")
    marker = await h.update(area_type="urban", reason="ward boundary")
    moved = await stack.classification(h.id, where=lambda c: c["category"] == "near_poor",
                                       message="urban line applied")
    assert moved["explanation"]["income_line_vnd"] == 2_000_000
    assert moved["explanation"]["trigger_event_id"] == marker.id
    assert moved["previous_category"] == "middle" and moved["head_name"] == "Lò Thị Hoa"
    # the member and the village/head-name edits decided nothing: two decisions in all
    assert [c["category"] for c in await history(stack, h.id)] == ["near_poor", "middle"]
    events = await stack.decisions(h.id, until=lambda es: sum(e["type"] == DECIDED
                                                              for e in es) >= 2)
    assert [e["category"] for e in events if e["type"] == DECIDED] == ["middle", "near_poor"]


async def test_redelivered_and_stale_events_change_nothing(stack: Stack):
    h = stack.household()
    await h.register()
    survey = await h.survey(income=1_000_000)
    await stack.classification(h.id)
    # the same event again (same ce_id): the inbox drops it
    await produce_event(stack.bootstrap, "registry.households", survey)
    # a survey that is not the household's current one (backdated) is no input
    await h.survey(income=5_000_000, is_current=False)
    marker = await h.survey(income=1_000_001)
    last = await stack.classification(
        h.id, where=lambda c: c["explanation"]["trigger_event_id"] == marker.id)
    assert [c["explanation"]["income_per_capita_vnd"] for c in await history(stack, h.id)] == [
        1_000_001, 1_000_000]
    assert last["previous_category"] == "poor"
    # an older snapshot (lower registry version) arriving late is ignored
    h.version = 1
    stale = await h.survey(income=9_000_000)
    marker = await h.update(area_type="rural")  # version 2 again: also older than applied
    h.version = 10
    newest = await h.survey(income=1_000_002)
    await stack.classification(
        h.id, where=lambda c: c["explanation"]["trigger_event_id"] == newest.id)
    triggers = [c["explanation"]["trigger_event_id"] for c in await history(stack, h.id)]
    assert stale.id not in triggers and marker.id not in triggers and len(triggers) == 3


async def test_incomplete_names_what_the_survey_lacks(stack: Stack):
    h = stack.household()
    await h.register()
    lacking = tuple(c for c in INDICATORS_2022 if c not in ("nutrition", "telecom"))
    await h.survey(income=900_000, codes=lacking)
    c = await stack.classification(h.id)
    assert c["category"] == "incomplete"
    assert c["explanation"]["missing"] == ["nutrition", "telecom"]
    assert "lacks nutrition, telecom" in c["explanation"]["text"]
    # an approval listing an incomplete classification cannot recognize it
    await stack.approve(h.commune, [(h.id, c["classification_id"], "incomplete")])
    await h.survey(income=900_000)
    done = await stack.classification(h.id, where=lambda x: x["category"] == "poor")
    assert done["recognized"] is None
    assert [x["status"] for x in await history(stack, h.id)] == ["provisional", "superseded"]


async def test_archive_withdraws_programmes_and_says_why(stack: Stack):
    h = stack.household()
    await h.register()
    await h.survey(income=1_100_000, deprived=("housing_quality", "latrine", "telecom"))
    c = await stack.classification(h.id)
    await stack.approve(h.commune, [(h.id, c["classification_id"], "poor")])
    await stack.classification(h.id, where=lambda x: x["status"] == "recognized")
    programs = await stack.programs(h.id)
    assert programs["HOUSING-SUPPORT"]["eligible"] is True
    assert "deprived in Housing quality" in programs["HOUSING-SUPPORT"]["reason"]

    await h.archive()

    async def withdrawn() -> bool:
        return not any(p["eligible"] for p in (await stack.programs(h.id)).values())

    await eventually(withdrawn, message="programmes withdrawn")
    assert (await stack.programs(h.id))["VBSP-POOR-LOAN"]["reason"] == (
        "the household is archived in the registry")
    events = await stack.decisions(h.id, until=lambda es: any(
        e["type"] == PROGRAMS and e["status"] == "archived" for e in es))
    last = [e for e in events if e["type"] == PROGRAMS][-1]
    assert last["changed"] == ["VBSP-POOR-LOAN", "HEALTH-INSURANCE-SUBSIDY", "HOUSING-SUPPORT",
                               "VOCATIONAL-TRAINING", "LIVELIHOOD-MODEL"]
    assert last["commune_code"] == h.commune and last["head_name"] == h.head_name


async def test_survey_date_picks_the_rule_set_2026_versus_2027(stack: Stack):
    h26, h27 = stack.household(), stack.household()
    for h, day in ((h26, date(2026, 12, 31)), (h27, date(2027, 1, 1))):
        await h.register()
        codes = INDICATORS_2022 if day.year == 2026 else tuple(
            c for c in INDICATORS_2022 if c != "information_access") + (
            "digital_services", "waste_treatment")
        await h.survey(income=2_000_000, day=day, codes=codes)
    c26 = await stack.classification(h26.id)
    c27 = await stack.classification(h27.id)
    assert (c26["ruleset_id"], c26["category"]) == ("VN-MDP-2022", "middle")
    assert (c27["ruleset_id"], c27["category"]) == ("VN-MDP-2027", "poor")
    assert c27["explanation"]["income_line_vnd"] == 2_200_000


async def test_just_escaped_ends_36_months_after_escaping(stack: Stack):
    h = stack.household()
    await h.register()
    await h.survey(income=1_000_000, day=date(2022, 9, 1))
    poor = await stack.classification(h.id)
    now = datetime.now(UTC)
    await stack.approve(h.commune, [(h.id, poor["classification_id"], "poor")],
                        approved_at=now - timedelta(days=40 * 31))
    await stack.classification(h.id, where=lambda c: c["status"] == "recognized")
    await h.survey(income=3_000_000, day=date(2023, 1, 5))
    better = await stack.classification(h.id, where=lambda c: c["category"] == "not_poor")
    await stack.approve(h.commune, [(h.id, better["classification_id"], "not_poor")],
                        approved_at=now - timedelta(days=37 * 31))
    done = await stack.classification(h.id, where=lambda c: c["status"] == "recognized"
                                      and c["category"] == "not_poor")
    assert done["transitions"][0]["kind"] == "escaped_poverty"
    assert done["just_escaped"] is False
    escaped = (await stack.programs(h.id))["VBSP-ESCAPED-LOAN"]
    assert escaped["eligible"] is False
    assert f"'just escaped' ended on {done['just_escaped_until']}" in escaped["reason"]


async def test_a_visit_decides_nothing_and_does_not_hold_up_the_next_event(stack: Stack):
    h = stack.household()
    await h.register()
    visit = registry.HouseholdVisitedV1(
        household_id=h.id, version=h.version, household=h.snapshot(), visit=registry.VisitV1(
            visit_id=str(uuid.uuid4()), cadre_id=str(uuid.uuid4()), cadre_name="Lò Thị Mai",
            organisation="womens_union", visited_on=date(2026, 3, 9), outcome="follow_up",
            next_visit_due=date(2026, 3, 20)))
    await produce_event(stack.bootstrap, registry.TOPIC, Envelope(
        type=registry.HOUSEHOLD_VISITED, source=registry.SOURCE, subject=h.id,
        data=visit.model_dump(mode="json")))
    survey = await h.survey(income=1_000_000)
    decided = await stack.classification(h.id)
    assert decided["explanation"]["trigger_event_id"] == survey.id
    assert len(await history(stack, h.id)) == 1
