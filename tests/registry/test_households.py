"""Household contract: register, read, list/search, PATCH with If-Match, archive, history."""

from __future__ import annotations

from services.registry import events
from tests.registry.conftest import (
    LAM_BINH,
    TUYEN_QUANG,
    admin,
    body,
    officer,
    person,
    published,
)


async def test_register_returns_201_etag_and_publishes_the_full_snapshot(registry, servers):
    sent = body(address="Số 5 ngõ 12", phone="0912345678", external_ref="hn-0001-a")
    r = await registry.client.post("/v1/households", json=sent, headers=officer())
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["etag"] == '"1"' and created["version"] == 1
    assert r.headers["location"] == f"/v1/households/{created['household_id']}"
    assert created["head_name"] == "Nguyễn Văn An"
    assert [m["relation"] for m in created["members"]] == ["head", "spouse"]

    got = await registry.client.get(f"/v1/households/{created['household_id']}", headers=officer())
    assert got.status_code == 200 and got.headers["etag"] == '"1"'
    assert got.json()["members"] == created["members"]

    [evt] = await published(servers.bootstrap_servers, created["household_id"], 1)
    assert evt.type == events.HOUSEHOLD_REGISTERED and evt.id == created["event_id"]
    assert evt.key == created["household_id"].encode()
    event = events.HouseholdRegisteredV1.model_validate(evt.data)
    snap = event.household
    assert snap.location.commune_code == "01001" and snap.location.village == sent["location"]["village"]
    assert snap.head_name == "Nguyễn Văn An" and snap.area_type == "rural"
    assert snap.external_ref == "hn-0001-a" and len(snap.members) == 2
    assert event.actor == "dev-commune_officer"


async def test_area_type_defaults_to_the_communes(registry):
    sent = body(commune=LAM_BINH, province=TUYEN_QUANG)
    del sent["area_type"]
    r = await registry.client.post("/v1/households", json=sent, headers=admin())
    assert r.status_code == 201, r.text
    assert r.json()["area_type"] == "rural"
    urban = body()
    del urban["area_type"]
    r = await registry.client.post("/v1/households", json=urban, headers=admin())
    assert r.json()["area_type"] == "urban"  # 01001 is a ward


async def test_q_matches_names_without_diacritics_and_cursor_pages_through(registry):
    village = "Thôn Tìm Kiếm"
    ids = []
    for i in range(5):
        r = await registry.client.post("/v1/households", headers=officer(), json=body(
            village=village, members=[person(f"Nguyễn Văn Ánh {i}")]))
        assert r.status_code == 201, r.text
        ids.append(r.json()["household_id"])
    r = await registry.client.post("/v1/households", headers=officer(), json=body(
        village=village, members=[person("Đặng Thị Đào")]))
    other = r.json()["household_id"]

    found = await registry.client.get("/v1/households", headers=officer(),
                                      params={"q": "nguyen van anh", "village": village})
    assert found.status_code == 200
    assert [h["household_id"] for h in found.json()["items"]] == ids
    dao = await registry.client.get("/v1/households", headers=officer(),
                                    params={"q": "DANG thi dao", "village": village})
    assert [h["household_id"] for h in dao.json()["items"]] == [other]

    seen, cursor = [], None
    while True:
        params = {"village": village, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await registry.client.get("/v1/households", headers=officer(),
                                          params=params)).json()
        seen += [h["household_id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [*ids, other]
    bad = await registry.client.get("/v1/households", headers=officer(),
                                    params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


async def test_patch_needs_if_match_and_a_reason_412_when_stale(registry, servers):
    created = (await registry.client.post("/v1/households", json=body(), headers=officer())).json()
    hid = created["household_id"]
    url = f"/v1/households/{hid}"
    no_match = await registry.client.patch(url, headers=officer(),
                                           json={"address": "Xóm 3", "reason": "moved house"})
    assert no_match.status_code == 428
    no_reason = await registry.client.patch(url, headers={**officer(), "If-Match": '"1"'},
                                            json={"address": "Xóm 3"})
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"

    ok = await registry.client.patch(url, headers={**officer(), "If-Match": '"1"'},
                                     json={"address": "Xóm 3", "area_type": "urban",
                                           "reason": "re-surveyed address"})
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] == '"2"' and ok.json()["address"] == "Xóm 3"
    stale = await registry.client.patch(url, headers={**officer(), "If-Match": '"1"'},
                                        json={"phone": "0987654321", "reason": "new phone"})
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert stale.json()["current_version"] == 2

    evts = await published(servers.bootstrap_servers, hid, 2)
    assert [e.type for e in evts] == [events.HOUSEHOLD_REGISTERED, events.HOUSEHOLD_UPDATED]
    updated = events.HouseholdUpdatedV1.model_validate(evts[1].data)
    assert updated.reason == "re-surveyed address" and updated.version == 2
    assert {(c.field, c.before, c.after) for c in updated.changes} == {
        ("address", None, "Xóm 3"), ("area_type", "rural", "urban")}
    assert updated.household.area_type == "urban"


async def test_history_lists_every_version_with_diff_actor_reason_time_and_event(registry, servers):
    created = (await registry.client.post("/v1/households", json=body(), headers=officer())).json()
    hid = created["household_id"]
    await registry.client.patch(f"/v1/households/{hid}",
                                headers={**officer(), "If-Match": "1"},
                                json={"phone": "0900000001", "reason": "phone given"})
    r = await registry.client.get(f"/v1/households/{hid}/history", headers=admin())
    assert r.status_code == 200
    history = r.json()
    assert [h["version"] for h in history] == [1, 2]
    assert history[0]["event_type"] == events.HOUSEHOLD_REGISTERED
    assert history[0]["event_id"] == created["event_id"]
    assert history[1]["actor"] == "dev-commune_officer" and history[1]["reason"] == "phone given"
    assert history[1]["changes"] == [{"field": "phone", "before": None, "after": "0900000001",
                                      "redacted": False}]
    assert history[1]["at"]
    evts = await published(servers.bootstrap_servers, hid, 2)
    assert [h["event_id"] for h in history] == [e.id for e in evts]


async def test_archive_releases_ids_and_freezes_the_household(registry, servers):
    head = person("Hà Văn Cường")
    created = (await registry.client.post("/v1/households", json=body(members=[head]),
                                          headers=officer())).json()
    hid = created["household_id"]
    r = await registry.client.post(f"/v1/households/{hid}/archive", headers=officer(),
                                   json={"reason": "moved to another province"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "archived" and r.json()["version"] == 2
    again = await registry.client.patch(f"/v1/households/{hid}",
                                        headers={**officer(), "If-Match": "2"},
                                        json={"phone": "0900000002", "reason": "late edit"})
    assert again.status_code == 409
    # The head's national ID may be registered again (e.g. in the new place).
    moved = await registry.client.post("/v1/households", json=body(members=[head]),
                                       headers=officer())
    assert moved.status_code == 201, moved.text
    evts = await published(servers.bootstrap_servers, hid, 2)
    archived = events.HouseholdArchivedV1.model_validate(evts[1].data)
    assert evts[1].type == events.HOUSEHOLD_ARCHIVED
    assert archived.reason == "moved to another province"
    assert archived.household.status == "archived"
