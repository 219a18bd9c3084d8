"""The golden path through real registry and supervision events: poor → recognized → loan;
a better survey → not poor → recognized → "just escaped" → escaped-poverty loan."""

from __future__ import annotations

from datetime import date

from tests.eligibility.conftest import Stack, admin
from tests.support.apps import auth


async def test_poor_household_recognized_then_escapes_poverty(stack: Stack):
    h = stack.household()
    await h.register()
    first_survey = await h.survey(income=1_200_000, day=date(2026, 3, 10))

    first = await stack.classification(h.id, message="first decision")
    assert (first["category"], first["status"], first["ruleset_id"]) == (
        "poor", "provisional", "VN-MDP-2022")
    e = first["explanation"]
    assert e["area_type"] == "rural"
    assert (e["income_per_capita_vnd"], e["income_line_vnd"]) == (1_200_000, 1_500_000)
    assert [d["code"] for d in e["deprived"]] == ["health_insurance", "housing_area", "latrine"]
    assert e["deprived"][2] == {"code": "latrine", "name_vi": "Nhà tiêu hợp vệ sinh",
                                "name_en": "Hygienic latrine"}
    assert (e["deprivation_count"], e["threshold"], e["missing"]) == (3, 3, [])
    assert e["trigger_event_id"] == first_survey.id and e["survey_event_id"] == first_survey.id
    assert e["survey_id"] == first["survey_id"]
    assert first["recognized"] is None and first["just_escaped"] is False
    before = await stack.programs(h.id)
    assert not any(p["eligible"] for p in before.values())
    assert "no recognized classification yet" in before["VBSP-POOR-LOAN"]["reason"]

    decided = await stack.decisions(h.id, until=lambda es: any(
        e["type"] == "eligibility.classification.decided.v1" for e in es))
    event = next(e for e in decided if e["type"] == "eligibility.classification.decided.v1")
    assert event["classification_id"] == first["classification_id"]
    assert event["previous_category"] is None and event["status"] == "provisional"
    assert (event["commune_code"], event["village"], event["head_name"]) == (
        h.commune, h.village, h.head_name)
    assert event["explanation"]["income_line_vnd"] == 1_500_000
    assert event["causation"] == first_survey.id and event["key"] == h.id.encode()

    await stack.approve(h.commune, [(h.id, first["classification_id"], "poor")])
    recognized = await stack.classification(h.id, where=lambda c: c["status"] == "recognized",
                                            message="recognized after approval")
    assert recognized["category"] == "poor" and recognized["recognized"]["category"] == "poor"
    programs = await stack.programs(h.id)
    assert programs["VBSP-POOR-LOAN"]["eligible"] is True
    assert programs["VBSP-POOR-LOAN"]["reason"].startswith("recognized poor household since")
    assert programs["VBSP-ESCAPED-LOAN"]["eligible"] is False
    assert programs["HOUSING-SUPPORT"]["eligible"] is False  # not deprived in housing_quality
    assert "not deprived in Housing quality" in programs["HOUSING-SUPPORT"]["reason"]

    events = await stack.decisions(h.id, until=lambda es: any(
        e["type"] == "eligibility.program_eligibility.changed.v1" and e["status"] == "recognized"
        for e in es))
    changed = [e for e in events if e["type"] == "eligibility.program_eligibility.changed.v1"]
    latest = changed[-1]
    assert (latest["commune_code"], latest["village"], latest["head_name"]) == (
        h.commune, h.village, h.head_name)
    assert latest["category"] == "poor" and latest["status"] == "recognized"
    assert len(latest["programs"]) == 7 and all(p["reason"] for p in latest["programs"])
    assert {p["program_code"] for p in latest["programs"] if p["eligible"]} == {
        "VBSP-POOR-LOAN", "HEALTH-INSURANCE-SUBSIDY", "VOCATIONAL-TRAINING", "LIVELIHOOD-MODEL"}
    assert set(latest["changed"]) == {"VBSP-POOR-LOAN", "HEALTH-INSURANCE-SUBSIDY",
                                      "VOCATIONAL-TRAINING", "LIVELIHOOD-MODEL"}
    assert any(e["type"] == "eligibility.classification.recognized.v1" for e in events)

    # A better survey: not poor, provisional — the household stays recognized poor meanwhile.
    await h.survey(income=2_600_000, day=date(2026, 10, 2))
    second = await stack.classification(h.id, where=lambda c: c["category"] == "not_poor",
                                        message="second decision")
    assert second["status"] == "provisional" and second["previous_category"] == "poor"
    assert second["recognized"]["category"] == "poor"
    assert (await stack.programs(h.id))["VBSP-POOR-LOAN"]["eligible"] is True

    await stack.approve(h.commune, [(h.id, second["classification_id"], "not_poor")])
    escaped = await stack.classification(
        h.id, where=lambda c: c["status"] == "recognized" and c["category"] == "not_poor",
        message="not poor recognized")
    assert escaped["just_escaped"] is True
    assert escaped["transitions"][0]["kind"] == "escaped_poverty"
    assert (escaped["transitions"][0]["from_category"],
            escaped["transitions"][0]["to_category"]) == ("poor", "not_poor")
    assert escaped["just_escaped_until"] is not None
    programs = await stack.programs(h.id)
    assert programs["VBSP-ESCAPED-LOAN"]["eligible"] is True
    assert "'just escaped' until" in programs["VBSP-ESCAPED-LOAN"]["reason"]
    assert programs["VBSP-POOR-LOAN"]["eligible"] is False
    assert "recognized not poor" in programs["VBSP-POOR-LOAN"]["reason"]
    assert programs["LIVELIHOOD-MODEL"]["eligible"] is True

    history = (await stack.client.get(f"/v1/households/{h.id}/classifications",
                                      headers=admin())).json()
    assert [(c["category"], c["status"]) for c in history] == [
        ("not_poor", "recognized"), ("poor", "superseded")]
    assert history[1]["superseded_by"] == second["classification_id"]

    events = await stack.decisions(h.id, until=lambda es: any(
        e["type"] == "eligibility.classification.recognized.v1"
        and e["transition"] == "escaped_poverty" for e in es))
    rec = next(e for e in events if e.get("transition") == "escaped_poverty")
    assert rec["previous_category"] == "poor" and rec["just_escaped_until"]
    final = [e for e in events if e["type"] == "eligibility.program_eligibility.changed.v1"][-1]
    assert {p["program_code"]: p["eligible"] for p in final["programs"]}["VBSP-ESCAPED-LOAN"]
    assert final["category"] == "not_poor" and final["head_name"] == h.head_name

    # The same approval delivered again changes nothing.
    await stack.approve(h.commune, [(h.id, second["classification_id"], "not_poor")])
    again = await stack.classification(h.id)
    assert len(again["transitions"]) == 1

    # Scope: another commune's officer sees nothing of it; the own commune's officer does.
    other = auth("commune_officer", "79999")
    for path in ("classification", "classifications", "programs"):
        r = await stack.client.get(f"/v1/households/{h.id}/{path}", headers=other)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    own = auth("commune_officer", h.commune)
    assert (await stack.client.get(f"/v1/households/{h.id}/programs", headers=own)).status_code == 200
    r = await stack.client.get("/v1/classifications", headers=other,
                               params={"commune_code": h.commune})
    assert r.status_code == 200 and r.json() == []
    r = await stack.client.get("/v1/classifications", headers=own,
                               params={"commune_code": h.commune, "status": "recognized"})
    assert [c["household_id"] for c in r.json()] == [h.id]
    r = await stack.client.get("/v1/classifications", headers=own,
                               params={"commune_code": h.commune, "category": "poor"})
    assert [(c["category"], c["status"]) for c in r.json()] == [("poor", "superseded")]
    bank = auth("bank_partner", "VN", partner="vbsp")
    assert (await stack.client.get(f"/v1/households/{h.id}/programs", headers=bank)).status_code == 403
