"""Rule sets over HTTP, the what-if evaluation, re-evaluation jobs, and the schema."""

from __future__ import annotations

import random
from datetime import date

import yaml

from services.eligibility.config import RULESETS_DIR
from tests.eligibility.conftest import Stack, admin
from tests.support.apps import auth
from tests.support.wait import eventually


async def test_rule_sets_are_listed_and_explained(stack: Stack):
    officer = auth("commune_officer", "01001")
    r = await stack.client.get("/v1/rulesets", headers=officer)
    assert r.status_code == 200
    listed = {rs["id"]: rs for rs in r.json()}
    assert {"VN-MDP-2022", "VN-MDP-2027"} <= set(listed)
    assert listed["VN-MDP-2027"]["income_lines_vnd"] == {"rural": 2_200_000, "urban": 2_800_000}
    assert listed["VN-MDP-2022"]["effective_to"] == "2026-12-31"

    detail = (await stack.client.get("/v1/rulesets/VN-MDP-2022", headers=officer)).json()
    latrine = next(i for i in detail["indicators"] if i["code"] == "latrine")
    assert latrine == {"code": "latrine", "name_vi": "Nhà tiêu hợp vệ sinh",
                       "name_en": "Hygienic latrine", "dimension": "water_sanitation",
                       "definition": "The household has no hygienic latrine or toilet.",
                       "unconfirmed": True}
    assert detail["category_bands"]["rural"][0] == {"category": "poor", "income": "≤ 1500000",
                                                    "deprivations": "≥ 3"}
    d27 = (await stack.client.get("/v1/rulesets/VN-MDP-2027", headers=officer)).json()
    assert "middle_lines_vnd" in [u["path"] for u in d27["unconfirmed"]]
    r = await stack.client.get("/v1/rulesets/VN-MDP-1999", headers=officer)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert (await stack.client.get("/v1/rulesets")).status_code == 401


async def test_what_if_evaluation_has_the_issue_shape_and_stores_nothing(stack: Stack):
    before = (await stack.client.get("/v1/classifications", headers=admin(),
                                     params={"limit": 1000})).json()
    body = {"area_type": "rural", "survey_date": "2026-05-01", "income_per_capita_vnd": 1_500_000,
            "deprivations": {"health_insurance": True, "housing_area": True, "latrine": False}}
    r = await stack.client.post("/v1/evaluate", headers=admin(), json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["category"] == "incomplete" and out["ruleset_id"] == "VN-MDP-2022"
    e = out["explanation"]
    assert (e["income_line_vnd"], e["deprived"], e["deprivation_count"], e["threshold"]) == (
        1_500_000, ["health_insurance", "housing_area"], 2, 3)
    assert len(e["missing"]) == 9 and "telecom" in e["missing"]

    full = dict.fromkeys(("employment", "dependants", "nutrition", "health_insurance",
                          "adult_education", "school_attendance", "housing_quality",
                          "housing_area", "water_source", "latrine", "telecom",
                          "information_access"), False) | {"health_insurance": True,
                                                           "housing_area": True, "latrine": True}
    r = await stack.client.post("/v1/evaluate", headers=admin(), json={
        "area_type": "rural", "ruleset_id": "VN-MDP-2022", "income_per_capita_vnd": 1_500_000,
        "deprivations": full})
    assert (r.json()["category"], r.json()["explanation"]["missing"]) == ("poor", [])
    r = await stack.client.post("/v1/evaluate", headers=admin(), json={
        "area_type": "urban", "survey_date": "2027-01-01", "income_per_capita_vnd": 2_800_001,
        "deprivations": {}})
    assert (r.json()["category"], r.json()["ruleset_id"]) == ("middle", "VN-MDP-2027")
    after = (await stack.client.get("/v1/classifications", headers=admin(),
                                    params={"limit": 1000})).json()
    assert len(after) == len(before)


async def test_bad_what_if_input_is_a_422_naming_the_field(stack: Stack):
    base = {"area_type": "rural", "survey_date": "2026-05-01", "income_per_capita_vnd": 1,
            "deprivations": {}}
    cases = [
        ({"area_type": "suburban"}, "area_type"),
        ({"income_per_capita_vnd": -1}, "income_per_capita_vnd"),
        ({"survey_date": None}, "survey_date"),
        ({"survey_date": "2019-06-01"}, "survey_date"),
        ({"ruleset_id": "VN-MDP-1999"}, "ruleset_id"),
        ({"ruleset_id": "VN-MDP-2027"}, "survey_date"),
        ({"deprivations": {"latrines": True}}, "deprivations.latrines"),
        ({"deprivations": {"latrine": "maybe"}}, "deprivations.latrine"),
    ]
    for change, field in cases:
        r = await stack.client.post("/v1/evaluate", headers=admin(), json=base | change)
        assert r.status_code == 422, (change, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in r.json()["errors"]], (change, r.json())


async def test_a_rule_set_change_reevaluates_affected_households_once(stack: Stack):
    province = f"{random.randint(60, 98)}"
    households = [stack.household(province=province) for _ in range(5)]
    for h in households:
        await h.register()
        await h.survey(income=1_800_000, day=date(2026, 4, 1))
    for h in households:
        c = await stack.classification(h.id)
        assert c["category"] == "middle"

    doc = yaml.safe_load((RULESETS_DIR / "examples" / "province-override.yaml").read_text())
    rid = f"VN-MDP-2022-P{province}"
    doc |= {"id": rid, "province_codes": [province]}
    path = stack.rulesets_dir / f"{rid}.yaml"

    # a broken file is refused with the reason, and nothing is re-decided
    path.write_text(yaml.safe_dump(doc | {"income_lines_vnd": {"rural": 1, "urban": 1}}), encoding="utf-8")
    r = await stack.client.post(f"/v1/rulesets/{rid}/reevaluate", headers=admin())
    assert r.status_code == 422 and "a local line may only be higher" in r.json()["detail"]

    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    officer = auth("commune_officer", households[0].commune)
    r = await stack.client.post(f"/v1/rulesets/{rid}/reevaluate", headers=officer)
    assert r.status_code == 403
    r = await stack.client.post(f"/v1/rulesets/{rid}/reevaluate", headers=admin())
    assert r.status_code == 202, r.text
    location = r.headers["location"]

    async def finished(url: str) -> dict | None:
        job = (await stack.client.get(url, headers=admin())).json()
        return job if job["status"] == "done" else None

    job = await eventually(lambda: finished(location), message="re-evaluation done")
    assert job["total"] >= 5 and job["processed"] == job["total"] and job["progress"] == 1.0
    assert job["changed"] == job["total"]
    for h in households:
        c = await stack.classification(h.id)
        assert (c["category"], c["ruleset_id"], c["previous_category"]) == ("poor", rid, "middle")
        assert c["explanation"]["reevaluation_job_id"] == job["job_id"]
        assert c["explanation"]["income_line_vnd"] == 2_000_000
    assert (await stack.client.get(f"/v1/rulesets/{rid}", headers=admin())).json()[
        "extends"] == "VN-MDP-2022"

    r = await stack.client.post(f"/v1/rulesets/{rid}/reevaluate", headers=admin())
    again = await eventually(lambda: finished(r.headers["location"]), message="re-run done")
    assert again["changed"] == 0 and again["processed"] == job["processed"]
    for h in households:
        assert len((await stack.client.get(f"/v1/households/{h.id}/classifications",
                                           headers=admin())).json()) == 2
    r = await stack.client.post("/v1/rulesets/VN-MDP-1999/reevaluate", headers=admin())
    assert r.status_code == 404


async def test_the_migrated_database_matches_the_table_definitions(stack: Stack):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.eligibility import tables

    async with stack.service.runtime.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), tables.meta))
    assert [d for d in diffs if "alembic_version" not in str(d)] == []
