"""A disaster shock, end to end over the four services as processes (issue 13 §2): a province
officer declares a flood over one village; eligibility lists that village's households for an
ad-hoc review (and no one else), their classification says so and stays as it was; a re-survey
closes the review and is decided as usual; the timeline tells shock → review → re-survey →
decision. Bad declarations are refused with the field named and nothing stored."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import httpx
import pytest

from tests.support.apps import auth
from tests.support.system import System, running_system
from tests.support.wait import eventually

COMMUNE, PROVINCE = "01001", "01"
FLOODED, DRY = "Thôn Bãi Sông", "Thôn Đồi"
INDICATORS = ("employment", "dependants", "nutrition", "health_insurance", "adult_education",
              "school_attendance", "housing_quality", "housing_area", "water_source", "latrine",
              "telecom", "information_access")
DEPRIVED = {"health_insurance", "housing_quality", "latrine", "water_source"}


@pytest.fixture(scope="module")
def system(servers):
    """The four services as processes."""
    with running_system() as s:
        yield s


def household(rng: random.Random, ref: str, village: str) -> dict:
    """One NDJSON line: a household with an inline survey before the flood."""
    return {"external_ref": ref, "area_type": "rural",
            "location": {"province_code": PROVINCE, "commune_code": COMMUNE, "village": village},
            "members": [{"full_name": f"Hộ {ref}", "national_id": f"{rng.randrange(10**12):012d}",
                         "date_of_birth": "1970-01-01", "sex": "male", "relation": "head"}],
            "survey": {"survey_date": "2026-09-01", "review_round": "2026",
                       "income_per_capita_vnd": 2_600_000,
                       "deprivations": {"health_insurance": True}}}


async def test_a_flood_opens_reviews_in_its_village_and_a_resurvey_closes_them(system: System):
    rng = random.Random(13)
    lines = [household(rng, f"flood-{i}", FLOODED if i < 4 else DRY) for i in range(7)]
    admin = auth("national_admin")
    province = auth("province_officer", PROVINCE)
    async with httpx.AsyncClient(base_url=system.url("registry"), timeout=30) as registry, \
            httpx.AsyncClient(base_url=system.url("eligibility"), timeout=30) as eligibility, \
            httpx.AsyncClient(base_url=system.url("supervision"), timeout=30) as supervision:
        r = await registry.post("/v1/imports", headers=admin | {
            "Content-Type": "application/x-ndjson"},
            content="".join(json.dumps(line) + "\n" for line in lines).encode())
        assert r.status_code == 202, r.text
        location = r.headers["location"]

        async def imported() -> dict | None:
            job = (await registry.get(location, headers=admin)).json()
            return job if job["status"] != "running" else None

        job = await eventually(imported, timeout=60, message="import done")
        assert job["accepted"] == 7, job
        page = (await registry.get("/v1/households", headers=admin, params={
            "commune_code": COMMUNE, "limit": 100})).json()
        ids = {h["external_ref"]: h["household_id"] for h in page["items"]
               if (h.get("external_ref") or "").startswith("flood-")}
        flooded = {ids[f"flood-{i}"] for i in range(4)}

        async def classified() -> bool:
            for h in ids.values():
                r = await eligibility.get(f"/v1/households/{h}/classification", headers=admin)
                if r.status_code != 200:
                    return False
            return True

        await eventually(classified, timeout=60, message="every household classified")
        before = (await eligibility.get(f"/v1/households/{ids['flood-0']}/classification",
                                        headers=admin)).json()
        assert before["under_review"] == []

        # Refused declarations: the field named, nothing stored.
        good = {"type": "flood", "occurred_on": date.today().isoformat(), "severity": "severe",
                "title": "Lũ quét tháng 12",
                "areas": [{"commune_code": COMMUNE, "villages": [FLOODED]}]}
        for body, field in (
                ({**good, "areas": []}, "areas"),
                ({**good, "areas": [{"commune_code": "99999"}]}, "areas.0.commune_code"),
                ({**good, "occurred_on": (date.today() + timedelta(days=2)).isoformat()},
                 "occurred_on"),
                ({**good, "type": "meteor"}, "type")):
            r = await registry.post("/v1/shocks", headers=province, json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert field in json.dumps(r.json()), (field, r.json())
        r = await registry.post("/v1/shocks", headers=auth("province_officer", "08"), json=good)
        assert r.status_code == 403, r.text  # another province's commune
        r = await registry.post("/v1/shocks", headers=auth("commune_officer", COMMUNE), json=good)
        assert r.status_code == 403, r.text  # communes do not declare shocks
        assert (await registry.get("/v1/shocks", headers=admin)).json() == []

        r = await registry.post("/v1/shocks", headers=province, json=good)
        assert r.status_code == 201, r.text
        shock = r.json()
        assert r.headers["location"] == f"/v1/shocks/{shock['shock_id']}"
        assert shock["areas"] == [{"province_code": PROVINCE, "commune_code": COMMUNE,
                                   "villages": [FLOODED]}]
        assert shock["review_due_on"] == (date.today() + timedelta(days=30)).isoformat()
        listed = (await registry.get("/v1/shocks", headers=auth("commune_chair", COMMUNE),
                                     params={"commune_code": COMMUNE})).json()
        assert [s["shock_id"] for s in listed] == [shock["shock_id"]]

        async def reviews() -> list[dict] | None:
            got = (await eligibility.get("/v1/reviews", headers=auth("commune_officer", COMMUNE),
                                         params={"commune_code": COMMUNE, "status": "open"})
                   ).json()
            return got if len(got) >= len(flooded) else None

        opened = await eventually(reviews, timeout=60, message="reviews opened")
        assert {r["household_id"] for r in opened} == flooded  # the dry village is not listed
        assert all(r["shock_id"] == shock["shock_id"] and not r["overdue"] for r in opened)
        under = (await eligibility.get(f"/v1/households/{ids['flood-0']}/classification",
                                       headers=admin)).json()
        assert [u["shock_id"] for u in under["under_review"]] == [shock["shock_id"]]
        assert under["category"] == before["category"]  # nothing lost because of the review
        assert under["classification_id"] == before["classification_id"]

        # The re-survey after the flood: poorer now; the review closes, a decision follows.
        target = ids["flood-0"]
        r = await registry.post(f"/v1/households/{target}/surveys", headers=admin, json={
            "survey_date": date.today().isoformat(), "review_round": "2026-shock",
            "income_per_capita_vnd": 900_000,
            "deprivations": {code: code in DEPRIVED for code in INDICATORS}})
        assert r.status_code == 201, r.text

        async def closed() -> list[dict] | None:
            got = (await eligibility.get("/v1/reviews", headers=admin, params={
                "household_id": target})).json()
            return got if got and got[0]["status"] == "closed" else None

        review = (await eventually(closed, timeout=60, message="review closed"))[0]
        assert review["survey_date"] == date.today().isoformat()

        async def redecided() -> dict | None:
            c = (await eligibility.get(f"/v1/households/{target}/classification",
                                       headers=admin)).json()
            return c if c["classification_id"] != before["classification_id"] else None

        after = await eventually(redecided, timeout=60, message="re-survey decided")
        assert after["category"] == "poor" and after["under_review"] == []
        still = (await eligibility.get("/v1/reviews", headers=admin, params={
            "commune_code": COMMUNE, "status": "open"})).json()
        assert {r["household_id"] for r in still} == flooded - {target}

        async def told() -> list[dict] | None:
            body = (await supervision.get(f"/v1/households/{target}/timeline",
                                          headers=admin)).json()
            types = [e["type"] for e in body["events"]]
            return body["events"] if "eligibility.review.closed.v1" in types and types.count(
                "eligibility.classification.decided.v1") >= 2 else None

        entries = await eventually(told, timeout=60, message="timeline tells the shock")
        by_type = {e["type"]: e for e in entries}
        shock_entry = by_type["registry.shock.declared.v1"]
        assert shock_entry["summary"]["en"].startswith("Flood of ")
        # the causal chain: shock → review opened; re-survey → review closed and the decision
        assert by_type["eligibility.review.opened.v1"]["causation_id"] == shock_entry["event_id"]
        resurvey = [e for e in entries if e["type"] == "registry.household.surveyed.v1"][-1]
        assert by_type["eligibility.review.closed.v1"]["causation_id"] == resurvey["event_id"]
        decisions = [e for e in entries if e["type"] == "eligibility.classification.decided.v1"]
        assert any(d["causation_id"] == resurvey["event_id"] for d in decisions)
        dry = ids["flood-6"]
        dry_types = [e["type"] for e in (await supervision.get(
            f"/v1/households/{dry}/timeline", headers=admin)).json()["events"]]
        assert "registry.shock.declared.v1" not in dry_types
        assert "eligibility.review.opened.v1" not in dry_types
