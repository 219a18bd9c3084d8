"""National-ID deduplication (409), possible duplicates (flagged, not blocked), location scope."""

from __future__ import annotations

import asyncio

from tests.registry.conftest import LAM_BINH, TUYEN_QUANG, admin, body, officer, person, published
from tests.support.apps import auth


async def test_a_national_id_held_elsewhere_is_409_naming_the_household_only_in_scope(registry):
    taken = person("Vàng A Sử")
    first = await registry.client.post("/v1/households", headers=officer(),
                                       json=body(members=[taken]))
    hid = first.json()["household_id"]

    again = await registry.client.post("/v1/households", headers=officer(), json=body(
        members=[person("Lý Văn Minh"), {**person("Vàng A Sử", "sibling"),
                                         "national_id": taken["national_id"]}]))
    assert again.status_code == 409
    assert again.json()["conflicting_household_id"] == hid
    assert again.json()["errors"] == [{"field": "members.1.national_id",
                                       "message": f"already registered in household {hid}"}]

    elsewhere = await registry.client.post(
        "/v1/households", headers=officer(LAM_BINH),
        json=body(commune=LAM_BINH, province=TUYEN_QUANG,
                  members=[{**person("Vàng A Sử"), "national_id": taken["national_id"]}]))
    assert elsewhere.status_code == 409
    assert "conflicting_household_id" not in elsewhere.json()
    assert hid not in elsewhere.text
    assert elsewhere.json()["errors"][0]["message"] == "already registered"

    twice = body(members=[person("A Páo"), person("A Páo em", "sibling")])
    twice["members"][1]["national_id"] = twice["members"][0]["national_id"]
    r = await registry.client.post("/v1/households", headers=officer(), json=twice)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "members.1.national_id"


async def test_same_name_and_birth_date_in_the_commune_is_flagged_not_blocked(registry, servers):
    village = "Thôn Trùng Tên"
    first = (await registry.client.post("/v1/households", headers=officer(), json=body(
        village=village, members=[person("Nguyễn Thị Hoa", sex="female",
                                         date_of_birth="1961-02-03")]))).json()
    second = await registry.client.post("/v1/households", headers=officer(), json=body(
        village=village, members=[person("nguyen  thi HOA", sex="female",
                                         date_of_birth="1961-02-03")]))
    assert second.status_code == 201
    assert second.json()["possible_duplicates"] == [first["household_id"]]
    other_commune = await registry.client.post("/v1/households", headers=admin(), json=body(
        commune=LAM_BINH, province=TUYEN_QUANG,
        members=[person("Nguyễn Thị Hoa", sex="female", date_of_birth="1961-02-03")]))
    assert other_commune.json()["possible_duplicates"] == []
    flagged = (await registry.client.get("/v1/households", headers=officer(), params={
        "village": village, "possible_duplicate": "true"})).json()["items"]
    assert [h["household_id"] for h in flagged] == [second.json()["household_id"]]
    [evt] = await published(servers.bootstrap_servers, second.json()["household_id"], 1)
    assert evt.data["possible_duplicates"] == [first["household_id"]]


async def test_scope_commune_province_national_and_auditors(registry):
    hanoi = (await registry.client.post("/v1/households", headers=officer(),
                                        json=body(village="Thôn Phạm Vi"))).json()
    tq = (await registry.client.post("/v1/households", headers=officer(LAM_BINH), json=body(
        commune=LAM_BINH, province=TUYEN_QUANG, village="Thôn Phạm Vi"))).json()
    ids = {hanoi["household_id"], tq["household_id"]}

    async def visible(headers) -> set[str]:
        page = (await registry.client.get("/v1/households", headers=headers,
                                          params={"village": "Thôn Phạm Vi",
                                                  "limit": 500})).json()
        return {h["household_id"] for h in page["items"]} & ids

    assert await visible(officer()) == {hanoi["household_id"]}
    assert await visible(auth("province_officer", "08")) == {tq["household_id"]}
    assert await visible(auth("auditor", "01001")) == ids  # auditors read everywhere
    assert await visible(admin()) == ids

    url = f"/v1/households/{tq['household_id']}"
    assert (await registry.client.get(url, headers=officer())).status_code == 404
    assert (await registry.client.get(f"{url}/history", headers=officer())).status_code == 404
    patch = await registry.client.patch(url, headers={**officer(), "If-Match": "1"},
                                        json={"phone": "0911111111", "reason": "try"})
    assert patch.status_code == 404
    assert (await registry.client.get(url, headers=auth("province_officer", "08"))).status_code == 200
    assert (await registry.client.patch(url, headers={**auth("auditor"), "If-Match": "1"},
                                        json={"phone": "0911111111", "reason": "try"})
            ).status_code == 403
    elsewhere = await registry.client.post("/v1/households", headers=officer(), json=body(
        commune=LAM_BINH, province=TUYEN_QUANG))
    assert elsewhere.status_code == 403
    move = await registry.client.patch(f"/v1/households/{hanoi['household_id']}",
                                       headers={**officer(), "If-Match": "1"},
                                       json={"location": {"province_code": "08",
                                                          "commune_code": LAM_BINH,
                                                          "village": "Thôn Mới"},
                                             "reason": "moved"})
    assert move.status_code == 403
    assert (await registry.client.get("/v1/households/not-a-uuid", headers=admin())
            ).status_code == 404


async def test_concurrent_registrations_of_one_national_id_give_one_201_and_one_409(registry):
    head = person("Sần Văn Đua")
    results = await asyncio.gather(*(
        registry.client.post("/v1/households", headers=officer(),
                             json=body(members=[dict(head)])) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
    assert all(r.headers["content-type"].startswith("application/problem+json")
               for r in results if r.status_code == 409)
