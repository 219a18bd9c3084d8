"""Members (add, edit, remove; If-Match + reason) and immutable surveys (newest is current)."""

from __future__ import annotations

from services.registry import events
from tests.registry.conftest import body, officer, person, published, survey


async def _household(registry) -> dict:
    r = await registry.client.post("/v1/households", json=body(), headers=officer())
    assert r.status_code == 201, r.text
    return r.json()


async def test_member_add_edit_remove_each_make_a_version_and_an_event(registry, servers):
    h = await _household(registry)
    hid, url = h["household_id"], f"/v1/households/{h['household_id']}/members"
    child = person("Nguyễn Thị Cúc", "child", sex="female", date_of_birth="2015-06-01")

    no_match = await registry.client.post(url, json={**child, "reason": "born"},
                                          headers=officer())
    assert no_match.status_code == 428
    added = await registry.client.post(url, json={**child, "reason": "new child recorded"},
                                       headers={**officer(), "If-Match": '"1"'})
    assert added.status_code == 201, added.text
    assert added.headers["etag"] == '"2"' and len(added.json()["members"]) == 3
    member_id = next(m["member_id"] for m in added.json()["members"]
                     if m["full_name"] == "Nguyễn Thị Cúc")

    stale = await registry.client.patch(f"{url}/{member_id}", headers={**officer(), "If-Match": "1"},
                                        json={"disability": True, "reason": "assessment"})
    assert stale.status_code == 412
    edited = await registry.client.patch(f"{url}/{member_id}",
                                         headers={**officer(), "If-Match": "2"},
                                         json={"disability": True, "reason": "assessment"})
    assert edited.status_code == 200, edited.text

    head_id = next(m["member_id"] for m in edited.json()["members"] if m["relation"] == "head")
    no_head = await registry.client.delete(f"{url}/{head_id}", params={"reason": "left"},
                                           headers={**officer(), "If-Match": "3"})
    assert no_head.status_code == 422
    two_heads = await registry.client.patch(f"{url}/{member_id}",
                                            headers={**officer(), "If-Match": "3"},
                                            json={"relation": "head", "reason": "x" * 5})
    assert two_heads.status_code == 422
    assert two_heads.json()["errors"][0]["field"] == "previous_head_relation"

    removed = await registry.client.delete(f"{url}/{member_id}",
                                           params={"reason": "moved to the city"},
                                           headers={**officer(), "If-Match": "3"})
    assert removed.status_code == 200, removed.text
    assert removed.json()["version"] == 4 and len(removed.json()["members"]) == 2

    evts = await published(servers.bootstrap_servers, hid, 4)
    assert [e.type for e in evts] == [events.HOUSEHOLD_REGISTERED, events.MEMBER_ADDED,
                                      events.MEMBER_UPDATED, events.MEMBER_REMOVED]
    upd = events.MemberChangedV1.model_validate(evts[2].data)
    assert [(c.field, c.before, c.after) for c in upd.changes] == [("disability", None, True)]
    gone = events.MemberChangedV1.model_validate(evts[3].data)
    assert gone.member.member_id == member_id and gone.reason == "moved to the city"
    assert member_id not in {m.member_id for m in gone.household.members}
    assert gone.household.location.commune_code == "01001" and gone.household.head_name


async def test_head_can_be_handed_over_in_one_version(registry):
    h = await _household(registry)
    url = f"/v1/households/{h['household_id']}/members"
    spouse = next(m for m in h["members"] if m["relation"] == "spouse")
    r = await registry.client.patch(f"{url}/{spouse['member_id']}",
                                    headers={**officer(), "If-Match": "1"},
                                    json={"relation": "head", "previous_head_relation": "spouse",
                                          "reason": "the husband works abroad"})
    assert r.status_code == 200, r.text
    assert r.json()["head_name"] == "Trần Thị Bình" and r.json()["version"] == 2
    assert sorted(m["relation"] for m in r.json()["members"]) == ["head", "spouse"]


async def test_surveys_are_immutable_and_the_newest_by_date_is_current(registry, servers):
    h = await _household(registry)
    hid = h["household_id"]
    url = f"/v1/households/{hid}/surveys"
    newer = await registry.client.post(url, json=survey(survey_date="2025-10-01"),
                                       headers=officer())
    assert newer.status_code == 201, newer.text
    assert newer.json()["is_current"] is True
    older = await registry.client.post(url, json=survey(survey_date="2024-10-01",
                                                        review_round="2024",
                                                        income_per_capita_vnd=900_000),
                                       headers=officer())
    assert older.status_code == 201 and older.json()["is_current"] is False

    got = (await registry.client.get(f"/v1/households/{hid}", headers=officer())).json()
    assert got["current_survey"]["survey_id"] == newer.json()["survey_id"]
    listed = (await registry.client.get(url, headers=officer())).json()
    assert [s["survey_date"] for s in listed] == ["2025-10-01", "2024-10-01"]
    sid = newer.json()["survey_id"]
    for method in ("PUT", "PATCH", "DELETE"):
        r = await registry.client.request(method, f"{url}/{sid}", headers=officer(), json={})
        assert r.status_code in (404, 405)

    evts = await published(servers.bootstrap_servers, hid, 3)
    first = events.HouseholdSurveyedV1.model_validate(evts[1].data)
    assert evts[1].type == events.HOUSEHOLD_SURVEYED and first.is_current
    assert first.survey.deprivations == {"health_insurance": True, "water_source": False,
                                         "latrine": True}
    assert first.survey.income_per_capita_vnd == 1_200_000
    assert first.survey.facts == {"housing_area_m2": 24.5}
    assert first.household.current_survey_id == sid
    second = events.HouseholdSurveyedV1.model_validate(evts[2].data)
    assert second.is_current is False and second.household.current_survey_id == sid
